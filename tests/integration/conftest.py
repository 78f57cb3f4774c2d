"""Shared fixtures for integration tests: one Prefect server, an isolated state dir, ports.

Every test here trains with the `tiny` settings profile (features.settings.PROFILES): the
whole code path on the least compute that still learns. Model quality is measured by
`twinops benchmark rul`, not here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.processes import free_port, stop_group, wait_http_ok
from tests.integration.servers import start_prefect_server

REPO = Path(__file__).resolve().parents[2]
#: API key for servers started by tests; `with_api_key(env)` configures its SHA-256.
TEST_API_KEY = "twinops-test-key"
API_KEY_HEADERS = {"Authorization": f"Bearer {TEST_API_KEY}"}
#: Shared by every test's state: a simulated pump is simulated once per machine.
SIMULATOR_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "twinops-test-simulator-cache"


def with_api_key(env: dict) -> dict:
    """Env for a server that requires TEST_API_KEY (send API_KEY_HEADERS)."""
    import hashlib
    import json

    digest = hashlib.sha256(TEST_API_KEY.encode()).hexdigest()
    return {**env, "TWINOPS_SERVING__AUTH_ENABLED": "true",
            "TWINOPS_SERVING__API_KEY_SHA256": json.dumps([digest])}


def state_env(root: Path, *, profile: str = "tiny", n_assets: int | None = None) -> dict:
    """TWINOPS_* / PREFECT / BENTOML variables that put every piece of state under `root`,
    with the settings `profile` (the tests' training budget) and optionally a fleet size."""
    fleet = {"TWINOPS_SIMULATOR__N_ASSETS": str(n_assets)} if n_assets else {}
    return {
        "TWINOPS_PROFILE": profile,
        **fleet,
        "TWINOPS_STATE_DIR": str(root / "state"),
        "TWINOPS_DATA_DIR": str(root / "workspace" / "data"),
        "PREFECT_HOME": str(root / "prefect"),
        "BENTOML_HOME": str(root / "bentoml"),
        "TWINOPS_CONFIG": str(root / "none.yaml"),
        # one simulation of the pumps' physics (ProgPy, seconds per pump) for the whole run
        "TWINOPS_SIMULATOR__CACHE_DIR": str(SIMULATOR_CACHE),
        # API keys are on by default; tests that want them use with_api_key(env).
        "TWINOPS_SERVING__AUTH_ENABLED": "false",
    }


@pytest.fixture(scope="session", autouse=True)
def prefect_server(tmp_path_factory):
    """URL of the one real Prefect API (`prefect server start`) of the whole session.

    Every flow of the integration tests talks to it: in this process (Prefect's
    `temporary_settings`, as its own test harness does) and in the CLI and BentoML
    subprocesses the tests start (PREFECT_API_URL in the environment). One server start
    instead of an ephemeral API per process; tests that read runs back filter for their own.
    """
    from prefect.logging.configuration import ensure_logging_setup
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # Prefect's console handler binds the sys.stderr of the moment it is configured: here,
    # not inside a test's CliRunner (whose stream is closed after it, breaking every later
    # in-process flow's logging).
    ensure_logging_setup()
    tmp = tmp_path_factory.mktemp("prefect-server")
    api, proc = start_prefect_server(tmp)
    os.environ["PREFECT_API_URL"] = api
    try:
        with temporary_settings({PREFECT_API_URL: api}):
            yield api
    finally:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)  # send the last run logs while the server listens
        os.environ.pop("PREFECT_API_URL", None)
        stop_group(proc)


@pytest.fixture
def isolated_env(tmp_path):
    """Environment for a whole-loop run in tmp_path: the tiny profile's fleet and budget.

    The whole of os.environ is restored afterwards: a CLI run in this process
    (runtime.prepare) points library homes into its state dir there.
    """
    saved = dict(os.environ)
    os.environ.update(state_env(tmp_path))
    yield dict(os.environ)
    os.environ.clear()
    os.environ.update(saved)


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


@contextlib.contextmanager
def in_env(env: dict) -> Iterator[None]:
    """The TWINOPS_* / BENTOML_* variables of `env` set in this process for the block: a
    module fixture builds its state with the settings its server will read."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            if key.startswith(("TWINOPS_", "BENTOML_")):
                mp.setenv(key, value)
        yield


def make_champion(settings, candidate: str) -> str:
    """Serve candidate version `candidate` without a review: the step an approval ends with
    (pipelines.review.install_champion: copy into the serving model, `champion`, an audit
    line), recorded as a demo approval by "test fixture". Returns the serving version."""
    from pipelines.review import install_champion
    from training.identity import Identity
    from training.registry import version_tags

    sha = version_tags(settings, candidate, model=settings.candidates_model_name)
    return install_champion(settings, str(candidate), actor=Identity("test fixture", False),
                            note="test fixture: served without a review", demo=True,
                            artifact_sha256=sha["artifact_sha256"])["champion"]


def build_champion(env: dict, sources: tuple[str, ...] = ("simulator",)) -> str:
    """Ingest `sources`, build features, train one version and make it `champion`, in this
    process with `env`'s settings (a module fixture's served state); returns the serving
    version."""
    from features.settings import get_settings
    from pipelines.flows import features_flow, ingest_flow, train_flow

    with in_env(env):
        s = get_settings()
        for source in sources:
            ingest_flow(source, s)
        features_flow(s)
        return make_champion(s, train_flow(settings=s).version)


@contextlib.contextmanager
def serving(env: dict, log_path: Path) -> Iterator[RunningServer]:
    """A ready RunningServer for the block, stopped after it (a module fixture's server)."""
    server = RunningServer(env, log_path)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


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


def _chromium(shot_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throwaway profile. Skips without Chromium, fails on CI
    (.ci/run installs it)."""
    import shutil

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must apt-get install it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={shot_dir / 'chromium-profile'}",
         "--hide-scrollbars", *args],
        check=True, capture_output=True, text=True, timeout=120)


def chromium_screenshot(page: Path | str, shot: Path, size: tuple[int, int],
                        wait_ms: int = 0) -> int:
    """Render `page` (a file, or a URL; `wait_ms` of virtual time lets a web app load) in
    headless Chromium into `shot`; the number of colours of the image (a blank page has a
    handful)."""
    from PIL import Image

    wait = [f"--virtual-time-budget={wait_ms}"] if wait_ms else []
    _chromium(shot.parent, *wait, f"--window-size={size[0]},{size[1]}", f"--screenshot={shot}",
              page.as_uri() if isinstance(page, Path) else page)
    image = Image.open(shot).convert("RGB")
    assert image.size == size
    return len(set(image.resize((size[0] // 4, size[1] // 4)).getdata()))


def chromium_text(url: str, work_dir: Path, wait_ms: int = 20000) -> str:
    """The DOM of `url` after `wait_ms` of virtual time (a web app's rendered page)."""
    return _chromium(work_dir, f"--virtual-time-budget={wait_ms}", "--dump-dom", url).stdout
