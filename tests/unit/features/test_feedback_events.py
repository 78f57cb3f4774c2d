"""Feedback events: good ones stored (idempotently), every bad one rejected with its reason."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features import datastore
from features.events import record_events, validate_events
from features.settings import get_settings
from features.sources.simulator import simulate_fleet


@pytest.fixture
def settings(tmp_path):
    s = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    readings, _ = simulate_fleet(2, seed=1)
    datastore.append_readings(s, readings)
    return s


def event(**kw):
    return {"asset_id": "sim-0001", "timestamp": "2024-01-09T00:00:00Z", "cycle": 150,
            "event": "failure", **kw}


def test_valid_event_is_stored_once_and_normalised(settings):
    batch = pd.DataFrame([event(event=" Failure ")])
    first = record_events(settings, batch)
    assert (first.accepted, first.appended, first.rejected) == (1, 1, [])
    again = record_events(settings, batch)
    assert (again.accepted, again.appended) == (1, 0)  # idempotent
    stored = datastore.load_events(settings)
    assert stored[["asset_id", "cycle", "event"]].values.tolist() == [["sim-0001", 150, "failure"]]
    assert str(stored["timestamp"].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (event(asset_id=""), "missing asset_id"),
        (event(asset_id="nope-1"), "unknown asset_id"),
        (event(timestamp="yesterday-ish"), "unparsable or missing timestamp"),
        (event(cycle=0), "cycle is not a positive integer"),
        (event(cycle=2.5), "cycle is not a positive integer"),
        (event(event="exploded"), "event must be one of failure, maintenance"),
    ],
)
def test_bad_event_is_rejected_with_reason_and_quarantined(settings, bad, reason):
    result = record_events(settings, pd.DataFrame([event(asset_id="sim-0002"), bad]))
    assert result.accepted == 1 and len(result.rejected) == 1
    assert result.rejected[0]["row"] == 1 and reason in result.rejected[0]["reason"]
    quarantined = pd.read_parquet(result.quarantine_file)
    assert reason in quarantined["quarantine_reason"].iloc[0]
    assert set(datastore.load_events(settings)["asset_id"]) == {"sim-0002"}


def test_missing_columns_reject_every_row():
    valid, rejected = validate_events(pd.DataFrame({"asset_id": ["a", "b"]}))
    assert len(valid) == 0 and len(rejected) == 2
    assert rejected["quarantine_reason"].str.contains("timestamp, cycle, event").all()


def test_feedback_cli_records_and_rejects(settings, monkeypatch):
    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("TWINOPS_DATA_DIR", str(settings.data_dir))
    for key in ("PREFECT_HOME", "BENTOML_HOME", "PREFECT_LOGGING_LEVEL", "PYTHONWARNINGS",
                "MLFLOW_LOGGING_LEVEL", "PREFECT_SERVER_ANALYTICS_ENABLED", "DVC_NO_ANALYTICS",
                "MLFLOW_ENABLE_ASYNC_LOGGING", "GIT_PYTHON_REFRESH"):
        monkeypatch.delenv(key, raising=False)  # the CLI's runtime.prepare sets them: undo after
    runner = CliRunner()
    ok = runner.invoke(app, ["feedback", "--asset-id", "sim-0001", "--cycle", "120"])
    assert ok.exit_code == 0, ok.output
    assert '"appended": 1' in ok.output
    bad = runner.invoke(app, ["feedback", "--asset-id", "sim-0001", "--cycle", "9",
                              "--event", "boom"])
    assert bad.exit_code == 2 and "event must be one of" in bad.output
    missing = runner.invoke(app, ["feedback", "--cycle", "9"])
    assert missing.exit_code == 2 and "--asset-id" in missing.output
