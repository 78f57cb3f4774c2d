"""`twinops monitor serve --cron` really runs the monitor flow on its schedule.

A Prefect server on a free port, `twinops monitor serve --cron "* * * * *"`
pointed at it, and the server's API must show a run of the `monitor` flow
that the served process picked up and finished within two minutes. The state
dir is empty, so the run itself ends FAILED ("the prediction log is empty"):
what is under test is the schedule and the served process, not the monitor
(tests/integration/test_closed_loop.py covers that).
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


def test_cron_schedule_fires_and_the_served_process_runs_the_flow(prefect_server, isolated_env,
                                                                  tmp_path):
    env = {**isolated_env, "PREFECT_API_URL": prefect_server}
    log = open(tmp_path / "serve.log", "w")
    served = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "monitor", "serve", "--cron", "* * * * *",
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
