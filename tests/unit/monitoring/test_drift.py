"""Drift report: a shifted column is detected; life-stage matching removes ageing pseudo-drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from monitoring.drift import DriftResult, match_life_stage, parse_snapshot

SENSORS = ["s1", "s2", "s3"]


def fleet(n: int, age_low: float, age_high: float, seed: int, bias: dict | None = None):
    """Rows of an ageing fleet: sensors rise with age (0 = new, 1 = failure) plus noise."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(age_low, age_high, n)
    df = pd.DataFrame(
        {
            "age": age,
            "s1": 3.0 * age**2 + rng.normal(0, 0.2, n),
            "s2": 2.0 * age + rng.normal(0, 0.2, n),
            "s3": rng.normal(0, 1, n),  # does not age
        }
    )
    for col, shift in (bias or {}).items():
        df[col] += shift
    return df


@pytest.fixture(scope="module")
def reference():
    return fleet(900, 0.0, 1.0, seed=1)  # run-to-failure history


@pytest.fixture(scope="module")
def young_cohort():
    return fleet(400, 0.0, 0.4, seed=2)  # same fleet, early in life


def test_ageing_looks_like_drift_raw_but_not_when_stage_matched(reference, young_cohort, tmp_path):
    from monitoring.drift import drift_report

    raw = drift_report(reference, young_cohort, SENSORS, tmp_path / "raw")
    assert raw.columns["s1"]["drifted"] and raw.columns["s2"]["drifted"]
    assert not raw.columns["s3"]["drifted"]
    assert raw.drift and raw.share == pytest.approx(2 / 3)

    matched = drift_report(reference, young_cohort, SENSORS, tmp_path / "m", stage_column="age")
    assert matched.drifted_columns == []
    assert not matched.drift and matched.share == 0.0
    assert matched.stage_column == "age" and matched.unmatched_share == 0.0
    assert matched.n_current == 400 and 0 < matched.n_reference <= 900


def test_shifted_column_is_detected_even_after_matching(reference, tmp_path):
    from monitoring.drift import drift_report

    biased = fleet(400, 0.0, 0.4, seed=3, bias={"s3": 1.0})  # a sensor bias of 1 std
    res = drift_report(
        reference, biased, SENSORS, tmp_path, stage_column="age", share_threshold=0.3
    )
    assert res.drifted_columns == ["s3"]
    assert res.drift  # 1/3 >= 0.3
    col = res.columns["s3"]
    assert set(col) == {"score", "threshold", "method", "drifted"}
    assert col["method"] and col["threshold"] is not None

    # files: standalone HTML and a JSON with our verdict + Evidently's snapshot
    assert res.html_path.read_text().lstrip().lower().startswith("<html") or (
        "<html" in res.html_path.read_text()[:500].lower()
    )
    payload = json.loads(res.json_path.read_text())
    assert payload["twinops"]["drifted_columns"] == ["s3"]
    assert {m["config"]["type"].rsplit(":", 1)[-1] for m in payload["evidently"]["metrics"]} == {
        "DriftedColumnsCount",
        "ValueDrift",
    }
    assert not list(tmp_path.glob(".*.tmp-*"))  # atomic writes leave no temp files


def test_explicit_method_and_threshold_are_used(reference, young_cohort, tmp_path):
    from monitoring.drift import drift_report

    res = drift_report(
        reference, young_cohort, ["s3"], tmp_path, method="ks", column_threshold=0.01
    )
    assert res.columns["s3"]["method"].startswith("K-S") or "ks" in res.columns["s3"]["method"]
    assert res.columns["s3"]["threshold"] == 0.01


def test_input_errors(reference, young_cohort, tmp_path):
    from monitoring.drift import drift_report

    with pytest.raises(KeyError):
        drift_report(reference, young_cohort, ["nope"], tmp_path)
    with pytest.raises(ValueError):
        drift_report(reference, young_cohort, [], tmp_path)
    with pytest.raises(ValueError):
        drift_report(reference, young_cohort.iloc[:0], SENSORS, tmp_path)


# ---- pure parts (no Evidently) ------------------------------------------------------------
def test_match_life_stage_matches_the_current_distribution(reference, young_cohort):
    matched, unmatched = match_life_stage(reference, young_cohort, "age", n_bins=10, seed=0)
    assert unmatched == 0.0
    assert matched["age"].max() <= young_cohort["age"].max() + 1e-9
    assert abs(matched["age"].mean() - young_cohort["age"].mean()) < 0.02
    again, _ = match_life_stage(reference, young_cohort, "age", n_bins=10, seed=0)
    pd.testing.assert_frame_equal(matched, again)  # deterministic


def test_match_life_stage_reports_unseen_stages():
    ref = pd.DataFrame({"age": np.linspace(0, 0.5, 300), "x": 0.0})
    cur = pd.DataFrame({"age": np.linspace(0, 1.0, 200), "x": 0.0})
    matched, unmatched = match_life_stage(ref, cur, "age", n_bins=10)
    assert unmatched == pytest.approx(0.5, abs=0.06)
    assert len(matched) > 0
    with pytest.raises(ValueError):
        match_life_stage(ref, cur.assign(age=cur["age"] + 5), "age")
    with pytest.raises(KeyError):
        match_life_stage(ref, cur, "cycle")


def test_match_life_stage_categorical_stage():
    ref = pd.DataFrame({"state": ["healthy"] * 80 + ["degraded"] * 20, "x": range(100)})
    cur = pd.DataFrame({"state": ["healthy"] * 10 + ["degraded"] * 10, "x": range(20)})
    matched, unmatched = match_life_stage(ref, cur, "state", min_rows=1)
    share = matched["state"].value_counts(normalize=True)
    assert unmatched == 0.0 and share["healthy"] == pytest.approx(0.5)


def snapshot_dict(with_tests: bool = True):
    metrics = [
        {
            "id": "m0",
            "config": {"type": "evidently:metric_v2:DriftedColumnsCount"},
            "value": {"count": 1.0, "share": 0.5},
        },
        {
            "id": "m1",
            "config": {
                "type": "evidently:metric_v2:ValueDrift",
                "column": "a",
                "threshold": 0.05,
                "method": "K-S p_value",
            },
            "value": 0.001,
        },
        {
            "id": "m2",
            "config": {
                "type": "evidently:metric_v2:ValueDrift",
                "column": "b",
                "threshold": 0.1,
                "method": "Wasserstein distance (normed)",
            },
            "value": 0.05,
        },
    ]
    tests = [
        {"id": "drift", "metric_config": {"metric_id": "m1"}, "status": "FAIL"},
        {"id": "drift", "metric_config": {"metric_id": "m2"}, "status": "SUCCESS"},
        {"id": "lt", "metric_config": {"metric_id": "m0"}, "status": "FAIL"},
    ]
    return {"metrics": metrics, "tests": tests if with_tests else []}


def test_parse_snapshot_reads_value_drift_and_count():
    columns, share = parse_snapshot(snapshot_dict())
    assert share == 0.5
    assert columns["a"] == {
        "score": 0.001,
        "threshold": 0.05,
        "method": "K-S p_value",
        "drifted": True,
    }
    assert columns["b"]["drifted"] is False


def test_parse_snapshot_falls_back_to_method_direction():
    columns, _ = parse_snapshot(snapshot_dict(with_tests=False))
    assert columns["a"]["drifted"] is True  # p-value 0.001 < 0.05
    assert columns["b"]["drifted"] is False  # distance 0.05 < 0.1
    d = snapshot_dict(with_tests=False)
    d["metrics"][2]["value"] = 0.2
    assert parse_snapshot(d)[0]["b"]["drifted"] is True  # distance >= threshold


def test_summary_is_json_ready(tmp_path):
    res = DriftResult(
        drift=True, share=1.0, columns={"a": {"drifted": True}}, html_path=tmp_path / "r.html"
    )
    summary = json.loads(json.dumps(res.summary()))
    assert summary["drifted_columns"] == ["a"] and summary["html_path"].endswith("r.html")


def test_distinct_states_dedupes_repeated_predictions():
    from monitoring.drift import distinct_states

    log = pd.DataFrame(
        {
            "asset_id": ["a", "a", "b", "a"],
            "feature_timestamp": ["t1", "t1", "t1", "t2"],
            "rul": [10.0, 11.0, 5.0, 9.0],
        }
    )
    out = distinct_states(log)
    assert out[["asset_id", "feature_timestamp"]].values.tolist() == [
        ["a", "t1"],
        ["b", "t1"],
        ["a", "t2"],
    ]
    assert out.loc[0, "rul"] == 11.0  # the latest prediction of that state
    assert distinct_states(log[["rul"]]).equals(log[["rul"]])
