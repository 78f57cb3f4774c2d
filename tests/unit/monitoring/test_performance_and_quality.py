"""Realized RUL errors from failure feedback, the RMSE trend, data-quality checks, sources."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from monitoring.performance import error_facts, join_truth, rmse_trend
from monitoring.quality import data_quality
from monitoring.sources import parse_time_range


def log_rows(rows):
    df = pd.DataFrame(rows, columns=["asset_id", "logged_at", "model_version", "cycle", "rul"])
    df["logged_at"] = pd.to_datetime(df["logged_at"], utc=True)
    return df


EVENTS = pd.DataFrame({"asset_id": ["a", "a", "b"], "cycle": [100, 300, 50],
                       "event": ["failure", "failure", "maintenance"]})


def test_true_rul_is_next_failure_minus_prediction_cycle_capped():
    log = log_rows([
        ("a", "2024-01-01", "1", 90, 15.0),    # next failure 100 → truth 10, error +5
        ("a", "2024-01-02", "1", 150, 100.0),  # next failure 300 → 150, capped 125 → -25
        ("a", "2024-01-03", "1", 301, 10.0),   # after the last failure: unknown
        ("b", "2024-01-01", "1", 10, 40.0),    # maintenance is not a failure: unknown
    ])
    errors = join_truth(log, EVENTS, cap=125.0)
    assert errors["cycle"].tolist() == [90, 150]
    assert errors["true_rul"].tolist() == [10.0, 125.0]
    assert errors["true_rul_uncapped"].tolist() == [10.0, 150.0]
    assert errors["error"].tolist() == [5.0, -25.0]


def test_rmse_trend_per_version_and_bucket_feeds_the_policy():
    log = log_rows([
        ("a", "2024-01-01T01:00", "1", 90, 12.0),   # error 2
        ("a", "2024-01-01T02:00", "1", 95, 9.0),    # error 4
        ("a", "2024-01-02T01:00", "1", 96, 14.0),   # error 10
        ("a", "2024-01-02T03:00", "2", 97, 3.0),    # error 0
    ])
    trend = rmse_trend(join_truth(log, EVENTS, cap=125.0), "1D")
    v1 = [r for r in trend if r["model_version"] == "1"]
    assert [r["n"] for r in v1] == [2, 1]
    assert v1[0]["rmse"] == pytest.approx(np.sqrt((4 + 16) / 2))
    assert v1[1]["rmse"] == pytest.approx(10.0)
    facts = error_facts(trend, "1")
    assert facts == {"version": "1", "n": 3, "rmse_first": v1[0]["rmse"], "rmse_latest": 10.0}
    assert error_facts(trend, "9") is None


def test_quality_flags_missing_out_of_range_and_frozen_sensors():
    rng = np.random.default_rng(0)
    ref = pd.DataFrame({"asset_id": np.repeat(["r1", "r2"], 100),
                        "sensor_2": rng.normal(0, 1, 200), "sensor_3": rng.normal(0, 1, 200),
                        "sensor_4": rng.normal(0, 1, 200)})
    cur = pd.DataFrame({"asset_id": np.repeat(["c1"], 100),
                        "sensor_2": rng.normal(0, 1, 100), "sensor_3": rng.normal(0, 1, 100),
                        "sensor_4": 0.5})
    cur.loc[:19, "sensor_2"] = np.nan
    cur.loc[20:29, "sensor_3"] = 50.0
    q = data_quality(ref, cur, ["sensor_2", "sensor_3", "sensor_4"])
    assert not q["ok"]
    text = " | ".join(q["issues"])
    assert "sensor_2: 20% missing" in text
    assert "sensor_3: 10.0% of values outside" in text
    assert "sensor_4: frozen" in text
    clean = data_quality(ref, ref.assign(asset_id="x"), ["sensor_2", "sensor_3", "sensor_4"])
    assert clean["ok"], clean["issues"]


def test_time_range_of_the_prediction_log_source():
    assert parse_time_range("2024-01-01T00:00/2024-02-01") == ("2024-01-01T00:00", "2024-02-01")
    assert parse_time_range("2024-01-01") == ("2024-01-01", None)
    assert parse_time_range("/2024-02-01") == (None, "2024-02-01")
    assert parse_time_range("") == (None, None)
