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

pytestmark = pytest.mark.integration


def test_ingest_flow_runs_on_the_prefect_server(prefect_server, isolated_env):
    env = {**isolated_env, "PREFECT_API_URL": prefect_server}
    before = _completed_ingest_runs(prefect_server)  # the session's server sees every test
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "ingest", "simulator"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = _completed_ingest_runs(prefect_server)
    # a simulator source with no --asset-type: one ingest per simulated type
    assert len(after - before) == 2, (before, after)
    assert '"turbofan"' in done.stdout and '"pump"' in done.stdout


def _completed_ingest_runs(api: str) -> set[str]:
    body = {"flows": {"name": {"any_": ["ingest"]}},
            "flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
    return {r["id"] for r in httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()}
