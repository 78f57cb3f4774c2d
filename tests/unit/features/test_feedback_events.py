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


#: A time between the readings of cycles 150 and 151 of each asset (the simulator reads
#: hourly, sim-0002 from 5 h later): a consistent cycle / timestamp pair.
AT_150 = {"sim-0001": "2024-01-07T05:30:00Z", "sim-0002": "2024-01-07T10:30:00Z"}


def event(**kw):
    row = {"asset_id": "sim-0001", "cycle": 150, "event": "failure", **kw}
    return {"timestamp": AT_150.get(row["asset_id"], AT_150["sim-0001"]), **row}


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


def test_a_timestamp_that_contradicts_the_cycle_is_rejected_naming_both(settings):
    readings = datastore.load_readings(settings)
    at = readings[readings["asset_id"] == "sim-0001"].set_index("cycle")["timestamp"]
    iso = {c: pd.Timestamp(at[c]).isoformat() for c in (40, 49, 50, 51, 60)}
    last = int(at.index.max())
    batch = pd.DataFrame([
        event(cycle=50, timestamp=iso[40]),  # before cycle 49 was read
        event(cycle=50, timestamp=iso[60]),  # after cycle 51 was read
        event(cycle=50, timestamp=iso[50]),  # its own reading's time
        event(cycle=50, timestamp=iso[49], event="maintenance"),  # the bounds are inclusive
        event(cycle=last + 5, timestamp="2030-01-01T00:00:00Z"),  # after the last reading
        event(cycle=1, timestamp="2023-12-31T00:00:00Z"),  # before the first: no reading below
        # sim-0001's cycle 51 was read at 02:00, sim-0002's at 07:00: its own readings decide
        event(asset_id="sim-0002", cycle=50, timestamp="2024-01-03T06:00:00Z"),
    ])
    result = record_events(settings, batch)
    reasons = {r["row"]: r["reason"] for r in result.rejected}
    assert set(reasons) == {0, 1}, reasons
    assert "timestamp" in reasons[0] and "before the stored reading of cycle 49" in reasons[0]
    assert "after the stored reading of cycle 51" in reasons[1] and "cycle 50" in reasons[1]
    assert result.accepted == 5
    assert sorted(datastore.load_events(settings)['cycle']) == sorted(
        [50, 50, last + 5, 1, 50])


def test_contradictions_are_checked_without_a_known_asset_requirement(settings):
    readings = datastore.load_readings(settings)
    first = readings[readings["asset_id"] == "sim-0001"].sort_values("cycle")
    late = pd.Timestamp(first["timestamp"].iloc[-1]).isoformat()
    result = record_events(settings, pd.DataFrame([event(cycle=2, timestamp=late),
                                                   event(asset_id="new-1", cycle=2)]),
                           require_known_asset=False)
    assert [r["row"] for r in result.rejected] == [0] and result.accepted == 1


def test_reading_time_is_when_the_cycle_was_read(settings):
    from features.events import reading_time

    at = reading_time(settings, "sim-0001", 120)
    assert at == pd.Timestamp("2024-01-05T23:00:00Z")
    assert reading_time(settings, "sim-0001", 10_000) is None
