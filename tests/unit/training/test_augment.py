"""Virtual assets from the damage law's time-scaling symmetry (training.augment)."""

import numpy as np
import pandas as pd
import pytest

from training.augment import fleet_paces, slope_columns, time_scaled_assets


def _asset(asset_id: str, life: int, rate: float = 0.03) -> pd.DataFrame:
    """One run-to-failure asset on the exponential law: level D(t), slope dD/dt."""
    cycle = np.arange(1, life + 1, dtype=float)
    damage = np.exp(rate * (cycle - life))
    return pd.DataFrame(
        {
            "asset_id": asset_id,
            "cycle": cycle.astype(np.int64),
            "rul": life - cycle,
            "sensor_2_mean": damage,
            "sensor_2_slope": rate * damage,
        }
    )


COLS = ["sensor_2_mean", "sensor_2_slope", "cycle"]


def test_a_virtual_asset_is_the_same_law_run_k_times_as_fast():
    life, rate, k = 200, 0.03, 1.25
    virtual, sources = time_scaled_assets(_asset("u1", life, rate), COLS, {"u1": [k]})
    assert sources == {"u1*1.25": "u1"}
    v = virtual[virtual["asset_id"] == "u1*1.25"]
    # the copy fails at life / k, and its RUL falls by one per virtual cycle
    np.testing.assert_allclose(v["rul"] + v["cycle"], life / k)
    # it is the exponential law with rate k * rate: level and slope at its own RUL
    expected = np.exp(-k * rate * v["rul"].to_numpy())
    np.testing.assert_allclose(v["sensor_2_mean"], expected, rtol=1e-3)
    np.testing.assert_allclose(v["sensor_2_slope"], k * rate * expected, rtol=1e-3)


def test_the_same_level_is_further_from_failure_on_a_slower_copy():
    virtual, _ = time_scaled_assets(_asset("u1", 200), COLS, {"u1": [0.8]})
    real = _asset("u1", 200)
    level = 0.5
    rul_at = {
        name: float(np.interp(level, f["sensor_2_mean"], f["rul"]))
        for name, f in (("real", real), ("slow", virtual))
    }
    assert rul_at["slow"] == pytest.approx(rul_at["real"] / 0.8, rel=1e-3)


def test_in_service_assets_and_factor_one_are_not_copied():
    in_service = _asset("u2", 120).assign(rul=np.nan)
    frame = pd.concat([_asset("u1", 150), in_service], ignore_index=True)
    virtual, sources = time_scaled_assets(
        frame, COLS, {"u1": [1.0, 1.25, 1.25], "u2": [1.25]}
    )
    assert set(sources) == {"u1*1.25"}
    assert set(virtual["asset_id"]) == {"u1*1.25"}
    assert not virtual.duplicated(["asset_id", "cycle"]).any()  # one copy per distinct pace


def test_factors_must_be_positive():
    with pytest.raises(ValueError, match="> 0"):
        time_scaled_assets(_asset("u1", 50), COLS, {"u1": [0.0]})


def test_only_rate_features_scale():
    assert slope_columns(["sensor_2_mean", "sensor_2_slope", "sensor_3_slope_long", "cycle"]) == [
        "sensor_2_slope",
        "sensor_3_slope_long",
    ]


def test_fleet_paces_are_the_lifetime_ratios_of_other_assets():
    frame = pd.concat([_asset("a", 100), _asset("b", 150), _asset("c", 200)], ignore_index=True)
    paces = fleet_paces(frame, copies=2, seed=0)
    assert sorted(paces["a"]) == pytest.approx([100 / 200, 100 / 150])  # both others
    assert sorted(paces["c"]) == pytest.approx([200 / 150, 200 / 100])
    assert fleet_paces(frame, copies=2, seed=0) == paces  # seeded
    assert all(len(v) == 1 for v in fleet_paces(frame, copies=1, seed=3).values())
    # an asset with another's lifetime is no new pace: "d" lives as long as "a"
    twins = pd.concat([frame, _asset("d", 100)], ignore_index=True)
    assert all(1.0 not in v and len(set(v)) == 2 for v in fleet_paces(twins, 2, 0).values())
