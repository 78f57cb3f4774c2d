"""The drift verdict: no alarm for an ageing cohort, a few biased sensors found, rows ≠ assets."""

from __future__ import annotations

import pytest

from monitoring.verdict import stage_matched_test
from tests.unit.monitoring.fleets import ageing_fleet

SENSORS = [f"s{i}" for i in range(12)]


def fleet(n_assets, life_low, life_high, seed, rows_per_asset=25, bias=None, prefix="a"):
    return ageing_fleet(SENSORS, n_assets, life_low, life_high, seed,
                        rows_per_asset=rows_per_asset, bias=bias, prefix=prefix)


@pytest.fixture(scope="module")
def reference():
    return fleet(60, 0.0, 1.0, seed=1)


def test_younger_cohort_of_the_same_fleet_is_not_drift(reference):
    young = fleet(30, 0.5, 1.0, seed=2, prefix="y")
    res = stage_matched_test(reference, young, SENSORS, "stage")
    assert not res.drift and res.share == 0.0, res.columns
    assert res.n_current_assets == 30 and res.n_reference_assets == 60
    assert res.unmatched_share == 0.0
    # without the stage (one bin for everything) the same cohort looks drifted: ageing
    unmatched = stage_matched_test(reference.assign(one=0.0), young.assign(one=0.0), SENSORS, "one")
    assert unmatched.drift


def test_one_std_bias_on_two_of_twelve_sensors_is_found(reference):
    biased = fleet(30, 0.5, 1.0, seed=3, bias={"s4": 1.0, "s7": 1.0}, prefix="b")
    res = stage_matched_test(reference, biased, SENSORS, "stage")
    assert res.drift
    assert sorted(c for c, v in res.columns.items() if v["drifted"]) == ["s4", "s7"]
    assert res.share == pytest.approx(2 / 12)
    col = res.columns["s4"]
    assert col["threshold"] == pytest.approx(0.01 / 12)  # Bonferroni
    assert col["statistic"] < col["threshold"] and col["shift"] > 0.5


def test_a_tiny_shift_is_not_drift_however_many_assets(reference):
    big = fleet(400, 0.0, 1.0, seed=4, bias={"s1": 0.1}, prefix="m")
    res = stage_matched_test(reference, big, SENSORS, "stage", min_shift=0.25)
    assert not res.columns["s1"]["drifted"]


def test_assets_not_rows_are_the_sample():
    """Two assets with many rows each: a row-level test would be sure; ours is not."""
    ref = fleet(2, 0.0, 1.0, seed=5, rows_per_asset=500)
    cur = fleet(2, 0.0, 1.0, seed=6, rows_per_asset=500, prefix="c")
    res = stage_matched_test(ref, cur, SENSORS, "stage")
    assert not res.drift
    assert res.n_reference_assets == 2 and res.n_current_rows == 1000


def test_unmatched_stages_and_constant_columns_are_reported(reference):
    cur = fleet(20, 0.5, 1.0, seed=7, prefix="u")
    cur.loc[:49, "stage"] = 5.0  # outside anything the reference saw
    ref = reference.assign(flat=1.0)
    res = stage_matched_test(ref, cur.assign(flat=1.0), [*SENSORS, "flat"], "stage")
    assert res.unmatched_share == pytest.approx(50 / len(cur))
    assert res.skipped_columns == ["flat"] and "flat" not in res.columns


def test_a_cohort_outside_every_reference_stage_is_drift_not_an_error():
    import numpy as np
    import pandas as pd

    from monitoring.policy import RetrainPolicy, decide_retrain

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"asset_id": np.repeat([f"r{i}" for i in range(10)], 20),
                              "rul": np.tile(np.arange(20.0), 10),
                              "s": rng.normal(size=200)})
    current = pd.DataFrame({"asset_id": ["c1", "c2"] * 5, "rul": [500.0] * 10,
                            "s": rng.normal(size=10)})
    test = stage_matched_test(reference, current, ["s"], "rul")
    assert test.drift and test.unmatched_share == 1.0 and "outside" in test.reason
    decision = decide_retrain(
        {"drift": test.drift, "share": test.share, "columns": test.columns,
         "n_current": 40, "reason": test.reason},
        RetrainPolicy(min_rows=1), now=pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime())
    assert decision.retrain and any("outside" in r for r in decision.reasons)
