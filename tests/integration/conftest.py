"""Shared fixtures for integration tests: an isolated state dir and free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """Environment for a whole-loop run in tmp_path: small fleet, few epochs."""
    env = {
        "TWINOPS_STATE_DIR": str(tmp_path / "state"),
        "TWINOPS_DATA_DIR": str(tmp_path / "workspace" / "data"),
        "TWINOPS_SIMULATOR__N_ASSETS": "16",
        "TWINOPS_TRAINING__MAX_EPOCHS": "8",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "TWINOPS_CONFIG": str(tmp_path / "none.yaml"),
    }
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
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   f"{Path(self.log.name).read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not ready: {Path(self.log.name).read_text()[-3000:]}")

    def stop(self) -> None:
        import signal

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
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
