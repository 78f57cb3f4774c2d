"""Real local servers for integration tests: a Prefect server and an MLflow basic-auth server.

Each starts on a free loopback port in its own process group, waits until it answers,
and is stopped (SIGTERM, then SIGKILL) afterwards. The Prefect server is the session's
(tests/integration/conftest.py); import `mlflow_auth_server` into a test module to use it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.processes import free_port, stop_group, wait_http_ok

ADMIN = ("admin", "admin-password-1234")
USERS = {name: f"{name}-password-1234" for name in ("alice", "bob", "mallory")}


def _start(cmd: list[str], env: dict, log_path: Path, probe: str, auth=None,
           timeout: float = 120.0) -> subprocess.Popen:
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_http_ok(probe, proc, timeout, auth=auth, log_text=log_path.read_text)
    except Exception:
        stop_group(proc)
        raise
    return proc


def start_prefect_server(tmp: Path) -> tuple[str, subprocess.Popen]:
    """(API URL, process) of a real `prefect server start` whose home is `tmp`."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp / "home"), "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    api = f"http://127.0.0.1:{port}/api"
    proc = _start([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                   "--port", str(port)], env, tmp / "server.log", f"{api}/health")
    return api, proc


@pytest.fixture(scope="module")
def mlflow_auth_server(tmp_path_factory):
    """URL of a real `mlflow server --app-name basic-auth` with users alice, bob, mallory.

    Nobody but the admin has any grant yet: each test module decides who may do what.
    """
    tmp = tmp_path_factory.mktemp("mlflow-auth")
    port = free_port()
    ini = tmp / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{tmp / 'auth.db'}\n"
        f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        # PBKDF2 on every request makes a model upload take minutes on 2 cores
        "auth_cache_ttl_seconds = 300\n"
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "twinops-test-secret"}
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(key, None)
    url = f"http://127.0.0.1:{port}"
    proc = _start([sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
                   "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                   "--artifacts-destination", str(tmp / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                  env, tmp / "server.log", f"{url}/health")
    from mlflow.server.auth.client import AuthServiceClient

    admin = AuthServiceClient(url)
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = ADMIN
    try:
        for name, password in USERS.items():
            admin.create_user(name, password)
    finally:
        os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        os.environ.pop("MLFLOW_TRACKING_PASSWORD", None)
    yield url
    stop_group(proc)
