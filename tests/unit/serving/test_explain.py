"""Explanations: integrated gradients of a small real RULNet, summed per channel.

Completeness (contributions add up to rul(x) - rul(baseline)), the per-channel sums, a
missing sensor's zero, /predict's `explain` flag (off: nothing changes; on: every answered
asset explained) and its validation (a boolean, capped: errors name `explain`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

from serving.explain import attribute, channel_map, channel_of, explain_rows, global_importance
from serving.predict import UNKNOWN_ASSET, ServedModel, predict_assets
from serving.schemas import MAX_EXPLAINED, Prediction, PredictRequest, parse_request
from tests.layout import FEATURE_COLUMNS, SENSOR_COLUMNS, SETTING_COLUMNS
from training.artifact import ModelSpec, RULPredictor
from training.conformal import ConformalCalibration
from training.network import RULNet

COLUMNS = ["sensor_2_mean", "sensor_2_slope", "sensor_2_mean_long", "sensor_3_mean",
           "sensor_3_vs_start", "setting_1", "age"]
MEAN = np.array([642.0, 0.0, 642.0, 1590.0, 5.0, 0.0, 100.0])
STD = np.array([0.5, 0.01, 0.4, 6.0, 3.0, 0.002, 60.0])


@pytest.fixture(scope="module")
def predictor() -> RULPredictor:
    """A 3-member RULNet with weights scaled up, so that the function is clearly non-linear
    (a freshly initialised net is almost linear, which would make completeness trivial)."""
    torch.manual_seed(0)
    net = RULNet(len(COLUMNS), 16, n_members=3, rul_scale=125.0)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(3.0)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 400)
    spec = ModelSpec(
        n_features=len(COLUMNS), hidden_size=16, feature_columns=COLUMNS,
        scaler_mean=MEAN.tolist(), scaler_std=STD.tolist(), rul_cap=125.0,
        interval_level=0.9, n_members=3,
        calibration=ConformalCalibration.fit(pred, pred + rng.normal(0, 5, 400)).to_dict())
    return RULPredictor(net, spec, torch_module=torch)


def rows(n: int, seed: int = 1) -> np.ndarray:
    return MEAN + STD * np.random.default_rng(seed).normal(0, 2, size=(n, len(COLUMNS)))


# ---------------------------------------------------------------- channels
def test_every_window_feature_of_a_sensor_maps_to_the_sensor():
    assert channel_of("sensor_2_mean_long") == "sensor_2"
    assert channel_of("sensor_11_slope_short") == "sensor_11"
    assert channel_of("sensor_3_vs_start") == "sensor_3"
    assert channel_of("setting_1") == "setting_1" and channel_of("age") == "age"
    names, onehot = channel_map(tuple(FEATURE_COLUMNS))
    assert names == (*SENSOR_COLUMNS, *SETTING_COLUMNS, "age")
    per_channel = dict(zip(names, onehot.sum(axis=0), strict=True))
    assert all(per_channel[s] == 7 for s in SENSOR_COLUMNS)
    assert all(per_channel[c] == 1 for c in (*SETTING_COLUMNS, "age"))


# ---------------------------------------------------------------- attributions
def test_contributions_add_up_to_rul_minus_baseline_rul(predictor):
    x = rows(40)
    got = attribute(predictor, x)
    served = predictor.predict_array(x, horizon=30)["rul"]
    baseline = predictor.predict_array(MEAN, horizon=30)["rul"][0]  # the training mean
    assert got.baseline_rul == pytest.approx(baseline, abs=1e-4)
    np.testing.assert_allclose(got.rul, served, atol=1e-4)
    total = got.contributions.sum(axis=1)
    assert np.ptp(served) > 10  # the rows really differ: the test is not about zeros
    np.testing.assert_allclose(total, served - baseline, atol=0.05)
    np.testing.assert_allclose(total - (got.rul - got.baseline_rul), got.gap, atol=1e-3)
    assert np.abs(got.gap).max() < 0.05


def test_channel_contributions_are_the_sums_of_their_features(predictor):
    from captum.attr import IntegratedGradients

    from serving.explain import N_STEPS, standardised

    x = rows(5)
    z = torch.from_numpy(standardised(predictor, x))
    per_feature = IntegratedGradients(lambda v: predictor.net(v)[0]).attribute(
        z, baselines=torch.zeros(1, len(COLUMNS)), n_steps=N_STEPS,
        method="gausslegendre").numpy()
    got = attribute(predictor, x)
    assert got.channels == ("sensor_2", "sensor_3", "setting_1", "age")
    np.testing.assert_allclose(got.contributions[:, 0], per_feature[:, :3].sum(axis=1),
                               atol=1e-5)
    np.testing.assert_allclose(got.contributions[:, 1], per_feature[:, 3:5].sum(axis=1),
                               atol=1e-5)
    np.testing.assert_allclose(got.contributions[:, 3], per_feature[:, 6], atol=1e-5)


def test_a_missing_sensor_contributes_exactly_zero_and_is_listed_as_imputed(predictor):
    x = rows(3)
    x[1, 3:5] = np.nan  # sensor_3 missing in row 1 (an optional sensor's dropout)
    explained = explain_rows(predictor, x)
    assert explained[1].contributions["sensor_3"] == 0.0
    assert explained[1].imputed == ["sensor_3"]
    assert explained[0].imputed == [] and explained[0].contributions["sensor_3"] != 0.0
    served = predictor.predict_array(x, horizon=30)["rul"]
    total = sum(explained[1].contributions.values())
    assert total == pytest.approx(served[1] - explained[1].baseline_rul, abs=0.05)


def test_top_drivers_are_the_largest_contributions_first(predictor):
    (one,) = explain_rows(predictor, rows(1), top=3)
    magnitudes = [abs(d.contribution) for d in one.top_drivers]
    assert len(one.top_drivers) == 3 and magnitudes == sorted(magnitudes, reverse=True)
    assert magnitudes[0] == max(abs(v) for v in one.contributions.values())
    assert one.method == "integrated_gradients" and one.baseline == "training_mean"


def test_global_importance_is_mean_absolute_contribution_per_channel(predictor):
    frame = pd.DataFrame(rows(300), columns=COLUMNS)
    importance = global_importance(predictor, frame, max_rows=50)
    assert set(importance) == {"sensor_2", "sensor_3", "setting_1", "age"}
    values = list(importance.values())
    assert values == sorted(values, reverse=True) and min(values) >= 0
    sample = frame.sample(50, random_state=0)
    expected = np.abs(attribute(predictor, sample.to_numpy()).contributions).mean(axis=0)
    assert importance["sensor_2"] == pytest.approx(expected[0], rel=1e-6)
    assert global_importance(predictor, frame.iloc[:0]) == {}


# ---------------------------------------------------------------- /predict's flag
def online(asset_ids):
    known = dict(zip(["a1", "a2", "a3"], rows(3, seed=7), strict=True))
    return pd.DataFrame([{"asset_id": a, **dict(zip(COLUMNS, known.get(
        a, np.full(len(COLUMNS), np.nan)), strict=True))} for a in asset_ids])


def test_explain_true_explains_every_answered_asset(predictor):
    model = ServedModel(predictor=predictor, name="m", version="1")
    resp = predict_assets(PredictRequest(asset_ids=["a2", "ghost", "a1"], explain=True),
                          model=model, fetch_features=online, default_horizon=30)
    a2, ghost, a1 = resp.predictions
    assert ghost.model_dump() == {"asset_id": "ghost", "error": UNKNOWN_ASSET}
    for item in (a2, a1):
        e = item.explanation
        assert e is not None and set(e.contributions) == {"sensor_2", "sensor_3",
                                                          "setting_1", "age"}
        assert sum(e.contributions.values()) == pytest.approx(item.rul - e.baseline_rul,
                                                              abs=0.05)
    assert "explanation" in a1.model_dump_json()


def test_explain_false_leaves_the_answer_unchanged_and_computes_nothing(predictor,
                                                                        monkeypatch):
    import serving.explain

    def boom(*_a, **_k):
        raise AssertionError("explain_rows must not run without explain: true")

    monkeypatch.setattr(serving.explain, "explain_rows", boom)
    model = ServedModel(predictor=predictor, name="m", version="1")
    resp = predict_assets(PredictRequest(asset_ids=["a1"]), model=model,
                          fetch_features=online, default_horizon=30)
    (item,) = resp.predictions
    assert isinstance(item, Prediction) and item.explanation is None
    assert "explanation" not in item.model_dump() and "explanation" not in resp.model_dump_json()


# ---------------------------------------------------------------- validation
@pytest.mark.parametrize("bad", ["yes", "true", 1, 0, None, [True]])
def test_explain_must_be_a_boolean_and_the_error_names_it(bad):
    with pytest.raises(ValidationError) as err:
        PredictRequest.model_validate({"asset_ids": ["a1"], "explain": bad})
    assert [e["loc"] for e in err.value.errors()] == [("explain",)]


def test_explained_assets_per_request_are_capped_naming_explain():
    ids = [f"a{i}" for i in range(MAX_EXPLAINED + 1)]
    assert parse_request({"asset_ids": ids}, max_batch=1000).explain is False
    with pytest.raises(ValidationError) as err:
        parse_request({"asset_ids": ids, "explain": True}, max_batch=1000)
    assert [e["loc"] for e in err.value.errors()] == [("explain",)]
    assert str(MAX_EXPLAINED) in str(err.value)
    assert parse_request({"asset_ids": ids[:MAX_EXPLAINED], "explain": True},
                         max_batch=1000).explain is True


# ---------------------------------------------------------------- reports
def test_fleet_page_shows_the_top_3_drivers_of_each_listed_asset(predictor):
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from pipelines.fleet_report import render_fleet_html, top_drivers
    from serving.decision_schemas import RiskItem
    from serving.predict import Lane

    model = ServedModel(predictor=predictor, name="m", version="1")
    lanes = {"t": Lane(asset_type="t", rul_unit="cycles", holder=SimpleNamespace(current=model),
                       fetch=online, stale_after=None, horizon=30)}
    drivers = top_drivers(["a1", "a2", "ghost"], lanes, lambda ids: dict.fromkeys(ids, "t"))
    assert set(drivers) == {"a1", "a2"} and drivers["a1"].count(",") == 2
    item = RiskItem(rank=1, asset_id="a1", asset_type="t", rul_unit="cycles", risk=0.5,
                    p_fail=0.5, horizon=30, criticality=1, rul=10, rul_lower=5, rul_upper=15,
                    last_reading_age_s=60, data_quality="ok")
    page = render_fleet_html([{"asset_type": "t", "rul_unit": "cycles", "horizon": 30,
                               "total": 1, "items": [item], "recommendations": {},
                               "drivers": drivers}], datetime.now(UTC))
    assert "top drivers [cycles]" in page and drivers["a1"] in page


def test_review_report_shows_the_global_sensor_importance():
    from pipelines.evidence import Evidence, ModelEvidence
    from pipelines.review_report import _importance

    def evidence(version, importance):
        return ModelEvidence(version=version, metrics={}, rmse_by_band={}, calibration={},
                             physics={}, predictions=pd.DataFrame(),
                             sensor_importance=importance)

    ev = Evidence(candidate=evidence("2", {"sensor_11": 9.5, "age": 3.0}),
                  champion=evidence("1", {"age": 4.0, "sensor_11": 1.0}), units=[],
                  data_hash=None)
    section = _importance(ev)
    assert "Global sensor importance" in section
    assert section.index("sensor_11") < section.index("<td>age")  # the candidate's order
    assert "9.500" in section and "4.000" in section
    assert _importance(Evidence(candidate=evidence("2", {}), champion=None, units=[],
                                data_hash=None)) == ""
