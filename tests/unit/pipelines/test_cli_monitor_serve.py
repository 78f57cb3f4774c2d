"""`twinops monitor serve` hands its schedule to Prefect's `flow.serve` as given."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from pipelines.cli import app


@pytest.fixture
def served(monkeypatch, tmp_path):
    from pipelines import monitor_flow

    calls: list[dict] = []
    monkeypatch.setattr(monitor_flow.monitor_flow, "serve", lambda **kw: calls.append(kw))
    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "none.yaml"))
    saved = dict(os.environ)  # the CLI's runtime.prepare points library homes into state
    yield calls, ["--state-dir", str(tmp_path / "state"), "monitor", "serve"]
    os.environ.clear()
    os.environ.update(saved)


def test_cron_and_interval_reach_prefect(served):
    calls, cmd = served
    assert CliRunner().invoke(app, [*cmd, "--cron", "0 * * * *", "--no-retrain"]).exit_code == 0
    assert CliRunner().invoke(app, [*cmd, "--interval", "30", "--name", "m"]).exit_code == 0
    assert calls[0]["cron"] == "0 * * * *" and "interval" not in calls[0]
    assert calls[0]["parameters"]["retrain_on_drift"] is False
    assert calls[1]["interval"] == 30 and calls[1]["name"] == "m" and "cron" not in calls[1]


def test_exactly_one_schedule(served):
    calls, cmd = served
    for args in ([], ["--cron", "0 * * * *", "--interval", "30"]):
        result = CliRunner().invoke(app, [*cmd, *args])
        assert result.exit_code == 2 and "exactly one" in result.output
    assert calls == []


def test_bad_settings_are_a_clear_error_naming_the_field(served, monkeypatch):
    calls, cmd = served
    monkeypatch.setenv("TWINOPS_PROFILE", "nope")
    result = CliRunner().invoke(app, [*cmd, "--cron", "0 * * * *"])
    assert result.exit_code == 2 and "invalid settings" in result.output
    assert "profile" in result.output and calls == []
