"""run_check: one typed Verdict, its files, its MLflow run; the report shows the tested bins."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.settings import get_settings
from monitoring.check import STAGE, Verdict, drift_check, in_tested_bins, run_check
from monitoring.drift import match_life_stage
from monitoring.policy import RetrainPolicy, decide_retrain
from monitoring.sources import MonitoredFrame
from monitoring.verdict import bin_index
from tests.layout import TURBOFAN
from tests.unit.monitoring.fleets import ageing_fleet

SENSORS = ["sensor_2_mean", "sensor_3_mean", "sensor_4_mean", "sensor_7_mean", "sensor_11_mean"]
ROWS = 25  # rows per asset


def fleet(n_assets, life_low, life_high, seed, prefix, bias=None):
    """Assets at remaining life `life` (1 new → 0 failed); sensors trend with age."""
    return ageing_fleet(SENSORS, n_assets, life_low, life_high, seed, rows_per_asset=ROWS,
                        bias=bias, prefix=prefix, stage_column="life")


def champion(frame: pd.DataFrame) -> np.ndarray:
    """A perfect stage estimate: the true remaining life."""
    return frame["life"].to_numpy()


@pytest.fixture(scope="module")
def frames():
    reference = fleet(40, 0.0, 1.05, seed=1, prefix="r")  # spans every current stage
    # 20 assets of the same fleet with sensor_3 biased by 1.5 std, and 4 assets newer than
    # any reference asset: their rows lie outside every reference stage bin.
    current = pd.concat([fleet(20, 0.4, 1.0, seed=2, prefix="c", bias={"sensor_3_mean": 1.5}),
                         fleet(4, 1.5, 2.0, seed=3, prefix="n")], ignore_index=True)
    return (MonitoredFrame(reference, "raw", "reference fleet"),
            MonitoredFrame(current, "raw", "current fleet"))


@pytest.fixture(scope="module")
def checked(frames, tmp_path_factory):
    out = tmp_path_factory.mktemp("check") / "verdict.json"
    settings = get_settings(state_dir=out.parent / "state")
    return run_check(settings, *frames, out, champion=champion, log=False)


def test_run_check_returns_a_typed_verdict(checked):
    assert isinstance(checked, Verdict)
    assert checked.drift and checked.drifted_columns == ("sensor_3_mean",)
    assert checked.share == pytest.approx(1 / len(SENSORS))
    assert checked.stage == "champion_predicted_rul"
    assert checked.unmatched_share == pytest.approx(4 / 24)
    assert checked.n_current == 24 * ROWS and checked.n_current_assets == 20
    assert checked.n_reference_assets == 40
    assert len(checked.stage_bins) == 11  # 10 quantile bins of the reference stage
    assert checked.mlflow_run_id is None  # log=False
    assert isinstance(checked.quality_issues, list)
    with pytest.raises(AttributeError):
        checked.drift = False  # frozen


def test_run_check_writes_the_verdict_and_the_report(checked):
    on_disk = json.loads(Path(checked.verdict_json).read_text())
    assert on_disk["drift"] is True and on_disk["drifted_columns"] == ["sensor_3_mean"]
    assert on_disk["stage_bins"] == list(checked.stage_bins)
    assert on_disk["report_html"] == checked.report_html and "mlflow_run_id" not in on_disk
    assert Path(checked.report_html).name == "verdict.evidently.html"
    assert "<html" in Path(checked.report_html).read_text()[:500].lower()
    assert checked.render_seconds is not None
    headline = checked.headline()
    assert headline["drifted_columns"] == ("sensor_3_mean",) and "quality_issues" in headline


def test_the_report_renders_the_rows_of_the_tested_bins(frames, checked):
    report = json.loads(Path(checked.report_json).read_text())["twinops"]
    assert report["stage_bins"] == list(checked.stage_bins)
    assert report["stage_column"] == STAGE
    # the current rows of the report are the ones the verdict tested: the newer assets' are not
    assert report["n_current"] == 20 * ROWS
    assert set(report["columns"]) == {*checked.columns, STAGE}


def test_tested_rows_are_drawn_on_the_verdicts_bins(frames):
    verdict, ref, cur = drift_check(*frames, TURBOFAN, champion=champion)
    tested = in_tested_bins(verdict, cur)
    assert len(tested) == 20 * ROWS and tested["asset_id"].str.startswith("c").all()
    edges = np.asarray(verdict.stage_bins)
    drawn, unmatched = match_life_stage(ref, tested, STAGE, edges=verdict.stage_bins)
    assert unmatched == 0.0
    cur_bins = pd.Series(bin_index(tested[STAGE].to_numpy(), edges)).value_counts(normalize=True)
    ref_bins = pd.Series(bin_index(drawn[STAGE].to_numpy(), edges)).value_counts(normalize=True)
    assert set(ref_bins.index) == set(cur_bins.index)  # no reference row from an untested bin
    pd.testing.assert_series_equal(ref_bins.sort_index(), cur_bins.sort_index(), atol=0.01,
                                   check_names=False)


def test_nothing_in_a_reference_stage_is_drift_without_a_report(frames, tmp_path):
    reference, _ = frames
    newer = MonitoredFrame(fleet(5, 3.0, 4.0, seed=4, prefix="x"), "raw", "newer fleet")
    verdict = run_check(get_settings(state_dir=tmp_path), reference, newer,
                        tmp_path / "v.json", champion=champion, log=False)
    assert verdict.drift and "outside" in verdict.reason
    assert verdict.report_html is None and verdict.report_json is None
    assert json.loads(Path(verdict.verdict_json).read_text())["drift"] is True


def test_run_check_logs_the_written_verdict(frames, tmp_path, monkeypatch):
    logged = {}

    def fake_log_check(settings, verdict, run_name):
        logged.update(verdict=verdict, run_name=run_name)
        return "run-123"

    monkeypatch.setattr("monitoring.check.log_check", fake_log_check)
    verdict = run_check(get_settings(state_dir=tmp_path), *frames, tmp_path / "daily.json",
                        champion=champion, render=False)
    assert verdict.mlflow_run_id == "run-123" and logged["run_name"] == "drift-daily"
    assert logged["verdict"]["verdict_json"] == verdict.verdict_json
    assert logged["verdict"]["drifted_columns"] == ("sensor_3_mean",)
    assert verdict.report_html is None  # render=False


def test_the_policy_reads_a_verdict_and_counts_its_assets(frames):
    verdict, _, _ = drift_check(*frames, TURBOFAN, champion=champion)
    now = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
    assert decide_retrain(verdict, RetrainPolicy(min_rows=20), now=now).retrain
    # 500 tested rows, but 20 assets: the sample the verdict rests on is too small for 21
    untrusted = decide_retrain(verdict, RetrainPolicy(min_rows=21), now=now)
    assert not untrusted.retrain
    assert any("20 current assets < min_rows 21" in r for r in untrusted.reasons)
