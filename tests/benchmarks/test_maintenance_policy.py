"""`twinops benchmark maintenance`: the realised-cost arithmetic, and the command end to end
on a tiny fleet (wiring and output contract; the figures are in docs/benchmarks.md)."""

import json

import numpy as np
import pytest

from benchmarks.maintenance import best_fixed_interval, policy_cost


def test_realised_cost_counts_a_failure_when_the_plan_comes_too_late():
    lives = np.array([100.0, 200.0])
    got = policy_cost(lives, np.array([90.0, 250.0]), planned=1.0, failure=10.0)
    # unit 0 maintained at 90 (cost 1), unit 1 fails at 200 (cost 10)
    assert got["cost_rate"] == pytest.approx(11.0 / 290.0)
    assert got["failures"] == 0.5 and got["mean_life_run"] == 145.0
    assert policy_cost(lives, np.full(2, np.inf), 1.0, 10.0)["cost_rate"] == pytest.approx(
        20.0 / 300.0)


def test_the_best_fixed_interval_is_found_on_the_given_lives():
    lives = np.array([100.0, 101.0, 102.0, 300.0])
    # just under the short cluster: three planned renewals, the long unit renewed early
    tau = best_fixed_interval(lives, planned=1.0, failure=50.0)
    assert tau == 99.0
    # maintenance dearer than failure: the best "interval" runs every unit to failure
    assert best_fixed_interval(lives, planned=60.0, failure=50.0) >= 300.0


def test_benchmark_maintenance_command_writes_json_and_table(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("TWINOPS_PROFILE", "tiny")
    out = tmp_path / "maintenance.json"
    res = CliRunner().invoke(app, [
        "--state-dir", str(tmp_path / "state"), "benchmark", "maintenance", "--n-train", "8",
        "--n-test", "4", "--max-epochs", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    result = json.loads(out.read_text())
    policies = result["policies"]
    assert set(policies) == {"recommendations", "run_to_failure", "fixed_interval", "oracle"}
    assert policies["run_to_failure"]["failures"] == 1.0
    assert policies["oracle"]["failures"] == 0.0
    # no policy beats the oracle (a planned renewal at the failure time)
    assert min(p["cost_rate"] for p in policies.values()) == policies["oracle"]["cost_rate"]
    assert "recommendations" in res.output and "× run-to-failure" in res.output
