"""Flows run against a real Prefect server when PREFECT_API_URL is set.

The test starts `prefect server start` on a free loopback port, runs
`twinops ingest` with PREFECT_API_URL pointing at it, and reads the flow run
back from the server's API: the run is recorded there, not in an ephemeral db.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.integration.conftest import REPO, free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def prefect_server(tmp_path, isolated_env):
    port = free_port()
    env = {**isolated_env, "PREFECT_HOME": str(tmp_path / "prefect-server"),
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false"}
    log = open(tmp_path / "prefect-server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited: {(tmp_path / 'prefect-server.log').read_text()}")
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("prefect server did not start in 120 s")
            time.sleep(0.5)
        yield api
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_ingest_flow_runs_on_the_prefect_server(prefect_server, isolated_env):
    env = {**isolated_env, "PREFECT_API_URL": prefect_server}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", "simulator"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = httpx.post(f"{prefect_server}/flow_runs/filter", json={}, timeout=10).json()
    ingest_runs = [r for r in runs if r["state_type"] == "COMPLETED"]
    assert ingest_runs, runs
    flow = httpx.get(f"{prefect_server}/flows/{ingest_runs[0]['flow_id']}", timeout=10).json()
    assert flow["name"] == "ingest"
