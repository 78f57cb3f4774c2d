"""Flows run against a real Prefect server when PREFECT_API_URL is set.

`twinops ingest` runs with PREFECT_API_URL pointing at a `prefect server start`
on a free loopback port; the flow run is then read back from that server's API:
it was recorded there, not in an ephemeral database.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.integration.conftest import REPO
from tests.integration.servers import prefect_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


def test_ingest_flow_runs_on_the_prefect_server(prefect_server, isolated_env):
    env = {**isolated_env, "PREFECT_API_URL": prefect_server}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", "simulator"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    body = {"flows": {"name": {"any_": ["ingest"]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    runs = httpx.post(f"{prefect_server}/flow_runs/filter", json=body, timeout=10).json()
    assert len(runs) == 1, runs
