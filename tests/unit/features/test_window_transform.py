"""The window transform: hand-checked values, offline/online equality, speed."""


import numpy as np
import pandas as pd
import pytest

from features.sources.simulator import simulate_fleet
from features.transforms import (
    START_READINGS,
    feature_history,
    history_length,
    latest_window_features,
    output_columns,
    short_window,
    tail_length,
    window_features,
)
from tests.layout import (
    FEATURE_COLUMNS,
    READING_COLUMNS,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
    TURBOFAN,
    typed,
)


def _tiny() -> pd.DataFrame:
    """Asset A: sensor_2 = 1, 2, 4, 8 at cycles 1..4; asset B: one reading."""
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    rows = []
    for i, v in enumerate([1.0, 2.0, 4.0, 8.0]):
        rows.append(
            {
                "asset_id": "A",
                "timestamp": t0 + pd.Timedelta(hours=i),
                "cycle": i + 1,
                "sensor_2": v,
            }
        )
    rows.append({"asset_id": "B", "timestamp": t0, "cycle": 7, "sensor_2": 5.0})
    df = pd.DataFrame(rows)
    for c in READING_COLUMNS:
        if c not in df:
            df[c] = 0.5
    return df[READING_COLUMNS]


def test_feature_columns_static_and_output_layout():
    assert len(FEATURE_COLUMNS) == 151 and len(set(FEATURE_COLUMNS)) == 151
    assert FEATURE_COLUMNS[:2] == ["sensor_1_mean", "sensor_2_mean"]
    assert FEATURE_COLUMNS[-4:] == [*SETTING_COLUMNS, "age"]
    out = window_features(_tiny(), typed(3))
    assert list(out.columns) == output_columns(TURBOFAN)
    assert set(FEATURE_COLUMNS) <= set(out.columns)
    assert str(out["cycle"].dtype) == "int64"


def test_hand_checked_values_window_3():
    out = window_features(_tiny(), typed(3)).set_index(["asset_id", "cycle"])
    mean = out["sensor_2_mean"]
    slope = out["sensor_2_slope"]
    # min_periods=1: the first rows use what exists.
    assert mean[("A", 1)] == 1.0 and slope[("A", 1)] == 0.0
    assert mean[("A", 2)] == 1.5 and slope[("A", 2)] == 1.0
    assert mean[("A", 3)] == pytest.approx(7 / 3, abs=1e-12)
    assert slope[("A", 3)] == pytest.approx(1.5, abs=1e-12)  # fit of 1,2,4 on 1,2,3
    assert mean[("A", 4)] == pytest.approx(14 / 3, abs=1e-12)  # window 2,4,8
    assert slope[("A", 4)] == pytest.approx(3.0, abs=1e-12)  # fit of 2,4,8 on 2,3,4
    # Windows never cross assets; a single point has slope 0.
    assert mean[("B", 7)] == 5.0 and slope[("B", 7)] == 0.0
    # The long scale (3 windows = 9 readings) still sees all 4 readings of A.
    assert out["sensor_2_mean_long"][("A", 4)] == pytest.approx(15 / 4, abs=1e-12)
    assert out["sensor_2_slope_long"][("A", 4)] == pytest.approx(2.3, abs=1e-12)
    # The short scale (3 // 3 = 1 reading) is the current value, with slope 0.
    assert out["sensor_2_mean_short"][("A", 4)] == 8.0
    assert out["sensor_2_slope_short"][("A", 4)] == 0.0
    # Against the start (all 4 readings of A so far): window mean - 15/4.
    assert out["sensor_2_vs_start"][("A", 1)] == 0.0
    assert out["sensor_2_vs_start"][("A", 4)] == pytest.approx(14 / 3 - 15 / 4, abs=1e-12)
    assert out["sensor_2_vs_start"][("B", 7)] == 0.0
    # Settings are the current values; constant sensors give zero slope.
    assert out["op_setting_1"].eq(0.5).all() and out["sensor_3_slope"].eq(0.0).all()


def test_start_baseline_stops_after_start_readings():
    # sensor_2 = cycle over 60 cycles: the baseline is the mean of cycles 1..50, for good.
    r, _ = simulate_fleet(1, seed=3)
    r = r.head(60).assign(sensor_2=lambda d: d["cycle"].astype(float))
    out = window_features(r, typed(1)).set_index("cycle")["sensor_2_vs_start"]
    assert START_READINGS == 50
    assert out[10] == pytest.approx(10 - 5.5, abs=1e-12)  # all 10 readings so far
    assert out[50] == pytest.approx(50 - 25.5, abs=1e-12)
    assert out[60] == pytest.approx(60 - 25.5, abs=1e-12)


def test_slope_uses_cycle_gaps():
    df = _tiny()
    df.loc[df["asset_id"] == "A", "cycle"] = [1, 2, 10, 20]
    df.loc[df["asset_id"] == "A", "sensor_2"] = [0.0, 1.0, 9.0, 19.0]  # y = cycle - 1
    out = window_features(df, typed(4))
    assert out.loc[3, "sensor_2_slope"] == pytest.approx(1.0, abs=1e-12)


def _naive(readings: pd.DataFrame, window: int) -> pd.DataFrame:
    """Reference: per-row loop with np.polyfit."""
    rows = []
    df = readings.sort_values(["asset_id", "timestamp"]).reset_index(drop=True)
    for _, g in df.groupby("asset_id", sort=False):
        for i in range(len(g)):
            w = g.iloc[max(0, i - window + 1) : i + 1]
            rec = {}
            start = g.iloc[: min(i + 1, START_READINGS)]
            for s in SENSOR_COLUMNS:
                rec[f"{s}_mean"] = w[s].mean()
                rec[f"{s}_slope"] = np.polyfit(w["cycle"], w[s], 1)[0] if len(w) > 1 else 0.0
                rec[f"{s}_vs_start"] = w[s].mean() - start[s].mean()
            rows.append(rec)
    return pd.DataFrame(rows)


def test_matches_naive_reference():
    r, _ = simulate_fleet(2, seed=4)
    r = r.groupby("asset_id").head(70)  # longer than START_READINGS
    ours = window_features(r, typed(7))
    ref = _naive(r, 7)
    long = _naive(r, history_length(7)).filter(regex="_(mean|slope)$").add_suffix("_long")
    short = _naive(r, short_window(7)).filter(regex="_(mean|slope)$").add_suffix("_short")
    ref = pd.concat([ref, long, short], axis=1)
    for c in ref.columns:
        np.testing.assert_allclose(
            ours[c].to_numpy(), ref[c].to_numpy(), rtol=1e-9, atol=1e-9, err_msg=c
        )


def test_offline_online_exactly_equal():
    r, _ = simulate_fleet(6, seed=9)
    window = 30
    full = window_features(r, typed(window))
    last_full = full.groupby("asset_id", sort=False).tail(1).reset_index(drop=True)
    online = latest_window_features(r, typed(window))
    pd.testing.assert_frame_equal(online, last_full, check_exact=True)
    # ... and from only each asset's first and last readings, as ingest reads them.
    kept = feature_history(r, typed(window))
    assert len(kept) < len(r)  # readings in the middle of long lives are left out
    assert kept.groupby("asset_id").size().max() <= START_READINGS + tail_length(typed(window))
    again = window_features(kept, typed(window)).groupby("asset_id", sort=False).tail(1)
    np.testing.assert_array_equal(
        again[FEATURE_COLUMNS].to_numpy(float), last_full[FEATURE_COLUMNS].to_numpy(float)
    )


def test_input_order_irrelevant():
    r, _ = simulate_fleet(3, seed=9)
    a = window_features(r, typed(10))
    b = window_features(r.sample(frac=1.0, random_state=1), typed(10))
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_bad_window():
    with pytest.raises(ValueError):
        window_features(_tiny(), typed(0))

