"""serving.whatif: the pump's physics (ProgPy particle filter + simulation to threshold) on
one simulated pump, the learned path with a fake champion, and the validation.

The physics tests share one simulated live pump (seed 0, unit 0: 56 readings, 2.33 h left)
and one state estimate (~5 s on 2 cores).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pydantic import ValidationError

from features.asset_types import builtin
from serving import whatif
from serving.whatif import WhatIfError
from serving.whatif_schemas import WhatIfRequest

#: Measured (docs/whatif.md, "Accuracy"): the median simulated RUL of the estimated state,
#: under the simulator's own future loading, against the true remaining life of 6 live
#: pumps (seed 0): relative errors -29 % to +46 %; this pump: +15 %. The tolerance is
#: that worst case, rounded up: the estimate is seeded, so this pump's value is fixed and
#: the test guards against a regression beyond what the method is known to do.
RUL_TOLERANCE = 0.5


@pytest.fixture(scope="module")
def pump():
    """(life readings, true RUL in hours, the simulator's draws) of one live pump."""
    from features.sources import pump as sim

    cache = Path(os.environ.get("TMPDIR", "/tmp")) / "twinops-test-simulator-cache"
    readings, truth = sim.simulate_pump_live(1, 0, cache_dir=cache, workers=1)
    params = sim._unit_params(sim.LIVE_SEED_OFFSET, 0, False)
    # the whole trajectory (cached by the call above) says which mode ended the life
    mode = sim._trajectories("live", sim.LIVE_SEED_OFFSET, 1, False, cache, 1)[0]
    params["failure_mode"] = str(mode[sim.FAILURE_MODE].iloc[-1])
    return readings.reset_index(drop=True), float(truth["rul"].iloc[0]), params


@pytest.fixture(scope="module")
def particles(pump):
    life, _, _ = pump
    return whatif.estimate_pump_state(life, period_s=300.0)


def test_estimated_state_simulates_to_the_true_remaining_life(pump, particles):
    from features.sources import pump as sim

    life, true_rul, params = pump
    now_s = (len(life) - 1) * sim.SAMPLE_PERIOD_S

    def simulator_loading(t):  # the simulator's own future duty profile, from now on
        u = sim._loading(params, now_s + t)
        return {c: float(u[c]) for c in sim.SETTING_COLUMNS}

    states = particles[:, np.random.default_rng(0).choice(particles.shape[1], 50)]
    ttf, mode = whatif.simulate_to_failure(states, simulator_loading, max_s=24 * 3600.0)
    median_h = float(np.median(ttf)) / 3600.0
    assert np.all(mode >= 0)
    assert abs(median_h / true_rul - 1) < RUL_TOLERANCE, (median_h, true_rul)
    # the mode that ends this pump's life in the simulator ends most samples
    assert np.mean(mode == sim.FAILURE_MODES.index(params["failure_mode"])) >= 0.5


def test_a_harsher_profile_shortens_the_rul(pump, monkeypatch):
    life, _, _ = pump
    monkeypatch.setattr(whatif, "N_PARTICLES", 200)
    answer = whatif.whatif_pump(life, {"V": 620.0}, setting_names=builtin("pump").setting_columns,
                                period_s=300.0, seconds_per_unit=3600.0, horizon=4.0,
                                level=0.9, n_samples=30)
    current, harsher = answer["current"], answer["requested"]
    assert answer["method"] == whatif.METHOD_PHYSICS
    assert harsher.rul < current.rul and harsher.p_fail >= current.p_fail
    # wsync follows V at the asset's ratio (0.8 in the simulator)
    assert harsher.profile["wsync"] == pytest.approx(0.8 * 620.0, rel=1e-3)
    assert abs(sum(current.failure_modes.values()) - 1) < 1e-9 and current.censored == 0
    assert current.rul_lower <= current.rul <= current.rul_upper
    assert set(answer["state_estimate"]) >= {"wA", "wRadial", "wThrust"}


def test_the_physics_refuses_a_life_it_cannot_bound(pump, monkeypatch):
    life, _, _ = pump
    monkeypatch.setattr(whatif, "MAX_READINGS", 10)
    with pytest.raises(WhatIfError) as err:
        whatif.whatif_pump(life, {"V": 520.0}, setting_names=["V"], period_s=300.0,
                           seconds_per_unit=3600.0, horizon=4.0, level=0.9)
    assert err.value.status == 422 and err.value.field == "asset_id"


# ---- the learned path ----------------------------------------------------------------
COLUMNS = ["sensor_mean", "op_setting_1", "age"]


class FakePredictor:
    """RUL = 100 - age - op_setting_1; trained on op_setting_1 ~ 10 +- 1."""

    feature_columns = COLUMNS
    interval_level = 0.9
    spec = SimpleNamespace(feature_columns=COLUMNS, scaler_mean=[0.0, 10.0, 50.0],
                           scaler_std=[1.0, 1.0, 20.0])

    def predict_array(self, x, horizon):
        rul = 100.0 - x[:, 2] - x[:, 1]
        return {"rul": rul, "rul_lower": rul - 5, "rul_upper": rul + 5,
                "p_fail": (rul <= horizon).astype(float), "health": rul / 100}


def _lane():
    from features.online import OnlineRows

    def fetch(ids):
        found = np.array([a == "t-1" for a in ids])
        return OnlineRows(list(ids), found, np.zeros(len(ids)),
                          np.array([[1.0, 10.0, 40.0]] * len(ids)), COLUMNS)

    model = SimpleNamespace(predictor=FakePredictor(), name="twinops-rul-turbofan", version="3")
    return SimpleNamespace(fetch=fetch, holder=SimpleNamespace(current=model))


def test_the_learned_path_is_labelled_an_extrapolation_and_flags_out_of_range():
    inside = whatif.whatif_learned(_lane(), "t-1", {"op_setting_1": 11.0}, horizon=30.0)
    assert inside["method"] == "learned model, extrapolation"
    assert inside["current"]["rul"] == 50.0 and inside["requested"]["rul"] == 49.0
    assert inside["out_of_range"] == [] and "sensor features" in inside["warnings"][0]

    outside = whatif.whatif_learned(_lane(), "t-1", {"op_setting_1": 20.0}, horizon=30.0)
    assert outside["out_of_range"] == ["op_setting_1"]
    assert any("outside the range the model was trained on" in w for w in outside["warnings"])
    with pytest.raises(WhatIfError) as err:
        whatif.whatif_learned(_lane(), "t-2", {"op_setting_1": 11.0}, horizon=30.0)
    assert err.value.status == 404


# ---- validation ----------------------------------------------------------------------
def test_unknown_and_out_of_range_fields_are_named():
    pump = builtin("pump")
    with pytest.raises(WhatIfError) as err:
        whatif.check_profile({"V": 520.0, "speed": 3.0}, pump)
    assert (err.value.status, err.value.field) == (400, "profile.speed")
    assert "profile.speed" in err.value.message and "Tamb" in err.value.message
    with pytest.raises(WhatIfError) as err:
        whatif.check_profile({"V": 5000.0}, pump)
    assert err.value.field == "profile.V" and "outside the declared range" in err.value.message
    whatif.check_profile({"V": 520.0, "pdisch": 9.5e5}, pump)


@pytest.mark.parametrize(("body", "field"), [
    ({"asset_id": "p", "profile": {"V": float("nan")}}, "profile"),
    ({"asset_id": "p", "profile": {}}, "profile"),
    ({"asset_id": "p", "profile": {"V": 520}, "n_samples": 10_000}, "n_samples"),
    ({"asset_id": "p", "profile": {"V": 520}, "horizon": -1}, "horizon"),
    ({"profile": {"V": 520}}, "asset_id"),
])
def test_bad_requests_name_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        WhatIfRequest.model_validate(body)
    assert err.value.errors()[0]["loc"][0] == field


def test_an_unknown_asset_is_a_404_naming_asset_id():
    request = WhatIfRequest(asset_id="nope", profile={"V": 520.0})
    with pytest.raises(WhatIfError) as err:
        whatif.answer_whatif(request, settings=None, type_of=lambda ids: {}, lanes={})
    assert (err.value.status, err.value.field) == (404, "asset_id")


def test_the_cli_parses_set_pairs_and_names_a_bad_one():
    import typer

    from pipelines.whatif_cli import _parse_sets

    assert _parse_sets(["V=520", "pdisch=9.5e5"]) == {"V": 520.0, "pdisch": 950000.0}
    for bad in ("V", "V=fast", "=3"):
        with pytest.raises(typer.BadParameter, match="FIELD=NUMBER"):
            _parse_sets([bad])
