"""`twinops monitor serve` really runs the monitor flow on its schedule.

`twinops monitor serve --interval 5` pointed at the session's Prefect server, and the
server's API must show a run of this deployment that the served process picked up and
finished. An interval rather than a cron schedule only so that the test need not wait for
the next minute: both are Prefect schedules of the same served deployment
(tests/unit/pipelines/test_cli_monitor_serve.py checks that --cron reaches Prefect). The
state dir is empty, so the run itself ends FAILED ("the prediction log is empty"): what is
under test is the schedule and the served process, not the monitor
(tests/integration/test_loop.py covers that).
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from benchmarks.processes import stop_group
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration

#: The session's Prefect server also sees other tests' monitor runs: this test reads its own.
DEPLOYMENT = "twinops-monitor-schedule-test"


def test_schedule_fires_and_the_served_process_runs_the_flow(prefect_server, isolated_env,
                                                                  tmp_path):
    env = {**isolated_env, "PREFECT_API_URL": prefect_server}
    log = open(tmp_path / "serve.log", "w")
    served = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "monitor", "serve", "--interval", "5",
         "--no-retrain", "--name", DEPLOYMENT], cwd=REPO, env=env, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True)
    body = {"deployments": {"name": {"any_": [DEPLOYMENT]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED", "FAILED", "CRASHED"]}}}}
    try:
        deadline = time.monotonic() + 150
        finished = []
        while not finished and time.monotonic() < deadline:
            assert served.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(3)
            finished = httpx.post(f"{prefect_server}/flow_runs/filter", json=body,
                                  timeout=10).json()
    finally:
        stop_group(served)
        log.close()
    assert finished, "no scheduled monitor run finished within 150 s"
    run = finished[0]
    assert run["deployment_id"] is not None and run["start_time"] is not None
