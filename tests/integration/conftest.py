"""Shared fixtures for integration tests: an isolated state dir and free ports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.processes import free_port, stop_group, wait_http_ok

REPO = Path(__file__).resolve().parents[2]
#: API key for servers started by tests; `with_api_key(env)` configures its SHA-256.
TEST_API_KEY = "twinops-test-key"
API_KEY_HEADERS = {"Authorization": f"Bearer {TEST_API_KEY}"}


def with_api_key(env: dict) -> dict:
    """Env for a server that requires TEST_API_KEY (send API_KEY_HEADERS)."""
    import hashlib
    import json

    digest = hashlib.sha256(TEST_API_KEY.encode()).hexdigest()
    return {**env, "TWINOPS_SERVING__AUTH_ENABLED": "true",
            "TWINOPS_SERVING__API_KEY_SHA256": json.dumps([digest])}


def state_env(root: Path, *, n_assets: int = 40, max_epochs: int = 8) -> dict:
    """TWINOPS_* / PREFECT / BENTOML variables that put every piece of state under `root`.

    40 assets is the demo's fleet. The promotion gates judge the model honestly, and on
    16 assets the cross-fitted model stops after one epoch, with a health head too
    jittery for the monotone-damage check (10.6% reversals, limit 10%): such a fleet
    would make the loop tests hinge on a borderline gate.
    """
    return {
        "TWINOPS_STATE_DIR": str(root / "state"),
        "TWINOPS_DATA_DIR": str(root / "workspace" / "data"),
        "TWINOPS_SIMULATOR__N_ASSETS": str(n_assets),
        "TWINOPS_TRAINING__MAX_EPOCHS": str(max_epochs),
        "PREFECT_HOME": str(root / "prefect"),
        "BENTOML_HOME": str(root / "bentoml"),
        "TWINOPS_CONFIG": str(root / "none.yaml"),
        # API keys are on by default; tests that want them use with_api_key(env).
        "TWINOPS_SERVING__AUTH_ENABLED": "false",
    }


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """Environment for a whole-loop run in tmp_path: small fleet, few epochs."""
    env = state_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return {**os.environ, **env}


class RunningServer:
    """A real `bentoml serve` subprocess on a free loopback port."""

    def __init__(self, env: dict, log_path: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        cmd = [
            sys.executable, "-m", "bentoml", "serve", "serving.service:TwinService",
            "--host", "127.0.0.1", "--port", str(self.port), "--working-dir", str(REPO),
        ]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, timeout: float = 120.0) -> None:
        wait_http_ok(f"{self.url}/healthz", self.proc, timeout,
                     log_text=Path(self.log.name).read_text)

    def stop(self) -> None:
        stop_group(self.proc, grace=20)
        self.log.close()


@pytest.fixture
def start_server(tmp_path):
    servers: list[RunningServer] = []

    def _start(env: dict) -> RunningServer:
        server = RunningServer(env, tmp_path / f"server-{len(servers)}.log")
        servers.append(server)
        server.wait_ready()
        return server

    yield _start
    for server in servers:
        server.stop()
