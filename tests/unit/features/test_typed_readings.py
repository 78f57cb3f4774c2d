"""Readings of a declared type: ranges, optional sensors that go missing, a cycle derived
from timestamps, and the window transform's missing-value policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.asset_types import parse_asset_type
from features.transforms import latest_window_features, window_features
from features.validation import validate_readings

FAN = parse_asset_type({
    "name": "fan", "time_index": "timestamp", "sampling_period_s": 60, "rul_unit": "hours",
    "window": 4,
    "settings": [{"name": "load", "unit": "kW", "min": 0, "max": 500}],
    "sensors": [{"name": "vib", "unit": "mm/s", "min": 0, "max": 100},
                {"name": "temp", "unit": "degC", "optional": True}],
    "missing": {"policy": "carry_forward", "limit": 2},
}, "test")


def _readings(n=12, asset="f1", start="2024-05-01"):
    t = pd.date_range(start, periods=n, freq="60s", tz="UTC")
    return pd.DataFrame({"asset_id": asset, "timestamp": t, "load": 100.0,
                         "vib": np.linspace(1, 2, n), "temp": np.linspace(40, 50, n)})


def test_cycle_is_the_age_in_sampling_periods_from_the_life_start():
    df = _readings(5)
    first = validate_readings(df, FAN).valid
    assert first["cycle"].tolist() == [1, 2, 3, 4, 5]
    # a later batch counts from the asset's stored life start, not its own first row
    later = validate_readings(df.iloc[3:], FAN, life_starts={"f1": df["timestamp"].iloc[0]})
    assert later.valid["cycle"].tolist() == [4, 5]
    # two readings in one sampling slot are duplicates of (asset_id, cycle)
    twice = pd.concat([df, df.iloc[[2]].assign(timestamp=df["timestamp"].iloc[2]
                                               + pd.Timedelta("10s"))])
    res = validate_readings(twice, FAN)
    assert res.counts["duplicate"] == 1


def test_out_of_range_is_quarantined_and_a_missing_optional_sensor_is_kept_and_counted():
    df = _readings(6)
    df.loc[1, "vib"] = -999.0          # a sentinel value
    df.loc[2, "temp"] = np.nan         # optional: kept
    df.loc[3, "vib"] = np.nan          # required: quarantined
    res = validate_readings(df, FAN)
    reasons = res.quarantined.set_index(res.quarantined.index)["quarantine_reason"].tolist()
    assert reasons == ["vib=-999 mm/s outside [0, 100]", "NaN in vib"]
    assert len(res.valid) == 4 and res.missing_optional == {"temp": 1}
    assert res.counts["out_of_range"] == 1


def test_a_dropout_is_carried_forward_within_the_limit_then_its_features_are_missing():
    df = validate_readings(_readings(12), FAN).valid
    gappy = df.copy()
    gappy.loc[5:6, "temp"] = np.nan      # 2 readings: within the carry limit
    gappy.loc[9:11, "temp"] = np.nan     # 3 readings: the third is beyond it
    out = window_features(gappy, FAN)
    carried = window_features(gappy.assign(temp=gappy["temp"].ffill()), FAN)
    cols = [c for c in out.columns if c.startswith("temp_")]
    pd.testing.assert_frame_equal(out.loc[:10, cols], carried.loc[:10, cols])
    assert out.loc[11, cols].isna().all()               # beyond the limit: missing
    assert out.loc[11, [c for c in out.columns if c.startswith("vib_")]].notna().all()
    # online from the asset's history gives the same newest row, bit for bit
    pd.testing.assert_frame_equal(latest_window_features(gappy, FAN),
                                  out.tail(1).reset_index(drop=True))


@pytest.mark.parametrize("policy", ["drop"])
def test_drop_policy_leaves_the_row_without_the_sensors_features(policy):
    fan = FAN.model_copy(update={"missing": FAN.missing.model_copy(update={"policy": policy})})
    df = validate_readings(_readings(8), fan).valid
    df.loc[4, "temp"] = np.nan
    out = window_features(df, fan)
    assert out.loc[4, "temp_mean"] != out.loc[4, "temp_mean"]  # NaN
    # the next row's window averages the values present
    assert out.loc[5, "temp_mean"] == pytest.approx(df.loc[[2, 3, 5], "temp"].mean())


def test_a_maintenance_starts_a_new_life_for_windows_baseline_and_age():
    from features.sources.simulator import simulate_fleet
    from tests.layout import TURBOFAN

    readings, _ = simulate_fleet(2, seed=3)
    events = pd.DataFrame({"asset_id": ["sim-0001"], "timestamp": [pd.Timestamp("2024-01-05",
                                                                                  tz="UTC")],
                           "cycle": [100], "event": ["maintenance"]})
    renewed = window_features(readings, TURBOFAN, events).set_index(["asset_id", "cycle"])
    plain = window_features(readings, TURBOFAN).set_index(["asset_id", "cycle"])
    one = renewed.loc["sim-0001"]
    assert one.loc[100, "age"] == 100 and one.loc[101, "age"] == 1   # the new life starts
    assert one.loc[101, "sensor_2_vs_start"] == 0.0                   # its own baseline
    assert one.loc[101, "sensor_2_mean"] == readings.set_index(["asset_id", "cycle"]).loc[
        ("sim-0001", 101), "sensor_2"]                                # a window of one reading
    pd.testing.assert_frame_equal(one.loc[:100], plain.loc["sim-0001"].loc[:100])
    pd.testing.assert_frame_equal(renewed.loc["sim-0002"], plain.loc["sim-0002"])
    # online, from the current life's readings, the same newest row
    online = latest_window_features(readings, TURBOFAN, events).set_index("asset_id")
    last = renewed.reset_index().groupby("asset_id").tail(1).set_index("asset_id")
    pd.testing.assert_frame_equal(online, last[online.columns])
