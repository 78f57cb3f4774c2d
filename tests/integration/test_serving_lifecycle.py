"""Serving's lifecycle over HTTP: a real `twinops serve` (which execs `bentoml serve`).

    module fixture: simulator fleet ─► ingest ─► features ─► train v1, v2 (MLflow),
                    v2's weights tampered in the artifact store, champion = v2
    test: start ─► alive, /healthz 200, /readyz and /predict 503 naming type, version and
          reason; the same processes for several poll periods and one refusal per worker
          (a crash made BentoML restart the worker every ~7 s forever) ─► alias to v1 ─►
          200 without a restart ─► no model download directory left ─► SIGTERM stops it
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import REPO, in_env, make_champion, state_env

pytestmark = pytest.mark.integration

POLL_S = 0.5


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("lifecycle")
    tmp = root / "tmp"  # the server's TMPDIR: where model downloads would be left
    tmp.mkdir()
    env = {**os.environ, **state_env(root, n_assets=6),
           "TWINOPS_FEAST__TTL_DAYS": "400",
           "TWINOPS_SERVING__MODEL_POLL_S": str(POLL_S),
           "TWINOPS_SERVING__WORKERS": "1",
           "TMPDIR": str(tmp)}
    env["_ROOT"] = str(root)
    env["_VERSIONS"] = json.dumps(_build(env))
    return env


def _build(env: dict) -> list[str]:
    """Two served versions [good, tampered]: both approved (test fixture), the second's
    weights tampered after registration, and champion."""
    from features.settings import get_settings
    from pipelines.flows import features_flow, ingest_flow, train_flow

    with in_env(env):
        s = get_settings()
        ingest_flow("simulator", s)
        features_flow(s)
        candidates = [train_flow(settings=s).version for _ in range(2)]
        good = make_champion(s, candidates[0])
        _tamper(s, candidates[1])
        return [good, make_champion(s, candidates[1])]


def _tamper(settings, version: str) -> None:
    from mlflow import MlflowClient

    source = MlflowClient(settings.tracking_uri).get_model_version(
        settings.candidates_model_name, version).source
    model_id = source.rsplit("/", 1)[-1]
    weights = [p for p in settings.artifact_root.rglob("weights.safetensors")
               if model_id in p.parts]
    assert len(weights) == 1, (source, weights)
    data = bytearray(weights[0].read_bytes())
    data[-1] ^= 0xFF
    weights[0].write_bytes(bytes(data))


def _pids(leader: int) -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process(leader).children(recursive=True)}


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"{what} not within {timeout} s (last: {last!r})")


def test_refused_champion_answers_503_then_serves_when_the_alias_moves(env):
    from benchmarks.processes import free_port, wait_http_ok
    from features import datastore
    from features.settings import get_settings
    from training.registry import set_alias

    good, tampered = json.loads(env["_VERSIONS"])
    with in_env(env):
        settings = get_settings()
        asset = sorted(set(datastore.load_readings(settings)["asset_id"]))[0]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = Path(env["_ROOT"]) / "serve.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "serve", "--port",
         str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_http_ok(f"{url}/healthz", proc, 120, log_text=log_path.read_text)

        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 503, ready.text
        reason = ready.json()["reason"]
        assert "turbofan" in reason and f"version {tampered}" in reason
        assert "TamperedArtifactError" in reason and "sha256" in reason
        predict = httpx.post(f"{url}/predict", json={"asset_ids": [asset]}, timeout=10)
        assert predict.status_code == 503, predict.text
        body = predict.json()
        assert set(body) == {"error", "detail"}
        assert f"version {tampered}" in body["error"] and "sha256" in body["error"]
        health = httpx.get(f"{url}/healthz", timeout=10).json()
        assert health["models"]["turbofan"]["refused"] == reason.split(": ", 1)[1]

        # no restart loop: the same processes over many poll periods, one refusal logged
        before = _pids(proc.pid)
        time.sleep(10)
        assert proc.poll() is None and _pids(proc.pid) == before
        text = log_path.read_text()
        assert text.count("Service twinops initialized") == 1, text  # one worker start
        assert text.count(f"version {tampered} refused") == 1, text  # one refusal logged
        assert httpx.get(f"{url}/readyz", timeout=10).status_code == 503

        set_alias(settings, "champion", good)
        r = _until(lambda: (lambda r: r.status_code == 200 and r)(
            httpx.post(f"{url}/predict", json={"asset_ids": [asset]}, timeout=10)), 30,
            "a 200 from /predict after the alias moved")
        assert r.json()["model_version"] == good
        ready = httpx.get(f"{url}/readyz", timeout=10)
        assert ready.status_code == 200 and ready.json()["reason"] is None, ready.text
        assert _pids(proc.pid) == before  # served without a restart

        # every download directory is gone, the refused one's and the loaded one's
        assert list(Path(env["TMPDIR"]).glob("twinops-model-*")) == []

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) is not None
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
