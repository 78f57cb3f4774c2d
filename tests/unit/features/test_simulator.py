"""Fleet simulator: determinism, plausibility (FD001-like), drift switches."""


import numpy as np
import pandas as pd
import pytest

from features.contract import EVENT_COLUMNS
from features.sources.simulator import (
    NOISE_STD,
    Drift,
    simulate_fleet,
    simulate_live,
)
from features.validation import validate_readings
from tests.layout import READING_COLUMNS, SENSOR_COLUMNS, TURBOFAN


@pytest.fixture(scope="module")
def fleet():
    return simulate_fleet(40, seed=7)


def test_same_seed_same_fleet_different_seed_different(fleet):
    r, e = fleet
    r2, e2 = simulate_fleet(40, seed=7)
    pd.testing.assert_frame_equal(r, r2)
    pd.testing.assert_frame_equal(e, e2)
    r3, _ = simulate_fleet(40, seed=8)
    assert not r3[SENSOR_COLUMNS].iloc[:50].equals(r[SENSOR_COLUMNS].iloc[:50])


def test_contract_columns_and_valid(fleet):
    r, e = fleet
    assert list(r.columns) == READING_COLUMNS
    assert list(e.columns) == EVENT_COLUMNS
    assert str(r["timestamp"].dtype) == "datetime64[ns, UTC]"
    res = validate_readings(r, TURBOFAN)
    assert res.counts["quarantined"] == 0 and len(res.valid) == len(r)


def test_one_failure_per_asset_at_last_cycle_fd001_like_lifetimes(fleet):
    r, e = fleet
    assert e["asset_id"].is_unique and len(e) == 40
    assert set(e["event"]) == {"failure"}
    last = r.groupby("asset_id")["cycle"].max()
    assert (e.set_index("asset_id")["cycle"] == last.loc[e["asset_id"]].to_numpy()).all()
    assert 128 <= last.min() and last.max() <= 362
    assert 150 <= last.median() <= 260


def test_sensors_respond_to_degradation_constants_stay(fleet):
    r, _ = fleet
    early = r.groupby("asset_id").head(20)[SENSOR_COLUMNS].mean()
    late = r.groupby("asset_id").tail(10)[SENSOR_COLUMNS].mean()
    delta = late - early
    # FD001 signs: temperatures (2, 3, 4) rise, HPC pressure (7) and W31/W32 fall.
    assert delta["sensor_4"] > 15 and delta["sensor_3"] > 8 and delta["sensor_2"] > 0.8
    assert delta["sensor_7"] < -1.5 and delta["sensor_21"] < -0.15
    for s in ["sensor_1", "sensor_5", "sensor_10", "sensor_16", "sensor_18", "sensor_19"]:
        assert r[s].nunique() == 1, s


def test_timestamps_deterministic_hourly_utc(fleet):
    r, _ = fleet
    a = r[r["asset_id"] == "sim-0002"]
    assert a["timestamp"].iloc[0] == pd.Timestamp("2024-01-01 05:00", tz="UTC")
    assert (a["timestamp"].diff().dropna() == pd.Timedelta(hours=1)).all()


def test_sensor_bias_drift_shows_up_exactly():
    base, _ = simulate_fleet(10, seed=3)
    drifted, _ = simulate_fleet(
        10, seed=3, drift={"bias_sensors": ["sensor_4", "sensor_11"], "bias_magnitude": 3.0}
    )
    j4, j11 = SENSOR_COLUMNS.index("sensor_4"), SENSOR_COLUMNS.index("sensor_11")
    shift4 = (drifted["sensor_4"] - base["sensor_4"]).mean()
    shift11 = (drifted["sensor_11"] - base["sensor_11"]).mean()
    assert shift4 == pytest.approx(3.0 * NOISE_STD[j4], rel=0.02)
    assert shift11 == pytest.approx(3.0 * NOISE_STD[j11], rel=0.05)
    untouched = [c for c in SENSOR_COLUMNS if c not in ("sensor_4", "sensor_11")]
    pd.testing.assert_frame_equal(base[untouched], drifted[untouched])


def test_new_regime_moves_settings_and_levels():
    base, _ = simulate_fleet(10, seed=3)
    drifted, _ = simulate_fleet(10, seed=3, drift=Drift(new_regime=True, regime_fraction=0.5))
    new = drifted["op_setting_1"] > 10
    assert 0.4 < new.mean() < 0.6
    assert (drifted.loc[new, "op_setting_3"] == 100).all()
    assert drifted.loc[new, "sensor_2"].mean() < base.loc[new, "sensor_2"].mean() - 20
    pd.testing.assert_frame_equal(drifted[~new], base[~new])


def test_unknown_drift_option_rejected():
    with pytest.raises(ValueError, match="unknown drift"):
        simulate_fleet(2, seed=1, drift={"bias": 3})


def test_live_fleet_truncated_with_true_rul():
    r, truth = simulate_live(12, seed=5, life_fraction=(0.4, 0.8))
    full, events = simulate_fleet(12, seed=5, prefix="live")
    last = r.groupby("asset_id")["cycle"].max()
    t = truth.set_index("asset_id")
    assert (last == t.loc[last.index, "cycle"]).all()
    assert (t["rul"] == t["failure_cycle"] - t["cycle"]).all() and (t["rul"] >= 1).all()
    assert (t["failure_cycle"].to_numpy() == events["cycle"].to_numpy()).all()
    frac = t["cycle"] / t["failure_cycle"]
    assert frac.between(0.39, 0.81).all()
    # Truncation never reshuffles noise: the live prefix equals the full trajectory.
    a = r[r["asset_id"] == "live-0003"][SENSOR_COLUMNS].to_numpy()
    b = full[full["asset_id"] == "live-0003"][SENSOR_COLUMNS].to_numpy()[: len(a)]
    np.testing.assert_array_equal(a, b)
    # Snapshot: every asset's newest reading is at as_of.
    assert r.groupby("asset_id")["timestamp"].max().nunique() == 1

