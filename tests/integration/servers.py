"""Real local servers for integration tests: a Prefect server and MLflow auth servers.

Each starts on a free loopback port in its own process group, waits until it answers,
and is stopped (SIGTERM, then SIGKILL) afterwards. The Prefect server is the session's
(tests/integration/conftest.py); import `mlflow_auth_server` (basic-auth) or
`mlflow_governed_server` (twinops-auth with `twinops access setup` applied) into a test
module to use it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.processes import free_port, stop_group, wait_http_ok

ADMIN = ("admin", "admin-password-1234")
USERS = {name: f"{name}-password-1234" for name in ("alice", "bob", "mallory")}
#: The identities of `mlflow_governed_server`, one per role of pipelines.access.MATRIX.
GOVERNED_USERS = {name: f"{name}-password-1234"
                  for name in ("service", "trainer", "reviewer", "viewer")}
REPO = Path(__file__).resolve().parents[2]


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


def _start_auth_server(tmp: Path, app: str, default_permission: str,
                       extra_env: dict | None = None) -> tuple[str, subprocess.Popen]:
    """`mlflow server --app-name <app>` with an ini under `tmp` (admin ADMIN, sqlite stores,
    proxied artifacts): (url, process)."""
    port = free_port()
    ini = tmp / "basic_auth.ini"
    ini.write_text(
        f"[mlflow]\ndefault_permission = {default_permission}\n"
        f"database_uri = sqlite:///{tmp / 'auth.db'}\n"
        f"admin_username = {ADMIN[0]}\nadmin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "grant_default_workspace_access = false\n"
        # PBKDF2 on every request makes a model upload take minutes on 2 cores
        "auth_cache_ttl_seconds = 300\n"
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "twinops-test-secret", **(extra_env or {})}
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        env.pop(key, None)
    url = f"http://127.0.0.1:{port}"
    proc = _start([sys.executable, "-m", "mlflow", "server", "--app-name", app,
                   "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
                   "--artifacts-destination", str(tmp / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                  env, tmp / "server.log", f"{url}/health")
    return url, proc


@pytest.fixture(scope="module")
def mlflow_auth_server(tmp_path_factory):
    """URL of a real `mlflow server --app-name basic-auth` with users alice, bob, mallory.

    Nobody but the admin has any grant yet: each test module decides who may do what.
    """
    tmp = tmp_path_factory.mktemp("mlflow-auth")
    url, proc = _start_auth_server(tmp, "basic-auth", "READ")
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


@contextlib.contextmanager
def mlflow_user(name: str, password: str):
    """MLFLOW_TRACKING_USERNAME/PASSWORD = (name, password) inside, restored after."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(zip(keys, (name, password), strict=True))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _twinops_auth_pythonpath(tmp: Path) -> str:
    """PYTHONPATH under which `mlflow server --app-name twinops-auth` finds the app.

    The entry point lives in pyproject.toml, but an environment installed before it was
    added (editable install, no `uv sync` since) has no such metadata: then a dist-info
    holding just that entry point goes first on the server's path, so the test still starts
    the server exactly as operators do (mlflow.server._find_app reads importlib.metadata).
    """
    from importlib.metadata import entry_points

    path = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    if not any(ep.name == "twinops-auth" for ep in entry_points(group="mlflow.app")):
        info = tmp / "entry-points" / "twinops_auth_entry-0.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: twinops-auth-entry\n"
                                       "Version: 0\n")
        (info / "entry_points.txt").write_text(
            "[mlflow.app]\ntwinops-auth = pipelines.mlflow_app:create_app\n")
        path.insert(0, str(info.parent))
    return os.pathsep.join(path)


@pytest.fixture(scope="module")
def mlflow_governed_server(tmp_path_factory):
    """A real `mlflow server --app-name twinops-auth` (default_permission NO_PERMISSIONS)
    with users service, trainer, reviewer and viewer, and `access.setup` applied for a
    settings object whose tracking URI is this server.

    Yields {"url", "settings", "passwords"} (passwords: user name -> password, admin too).
    """
    from features.settings import get_settings
    from pipelines import access

    tmp = tmp_path_factory.mktemp("mlflow-governed")
    url, proc = _start_auth_server(tmp, "twinops-auth", "NO_PERMISSIONS",
                                   {"PYTHONPATH": _twinops_auth_pythonpath(tmp)})
    settings = get_settings(state_dir=tmp / "state", data_dir=tmp / "ws" / "data",
                            mlflow_tracking_uri=url, profile="tiny")
    try:
        with mlflow_user(*ADMIN):
            access.setup(settings, service="service", trainers=["trainer"],
                         reviewers=["reviewer"], viewers=["viewer"], passwords=GOVERNED_USERS)
        yield {"url": url, "settings": settings,
               "passwords": {**GOVERNED_USERS, ADMIN[0]: ADMIN[1]}}
    finally:
        stop_group(proc)
