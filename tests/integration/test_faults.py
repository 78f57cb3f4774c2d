"""Faults, as tests: what a hard kill or a stop signal leaves behind, on real processes.

    module fixture: simulator fleet ─► features ─► one trained champion (tiny profile)
    kill -9 mid-ingest   3 clients post /ingest batches to `twinops serve` (2 workers);
                         SIGKILL to the whole process group after the first answers;
                         restart ─► every batch answered 200 is stored exactly once (raw
                         readings, registry, offline features), an unanswered one is whole
                         or absent, the store reads and takes the unanswered ones again
    SIGTERM under load   6 keep-alive clients on /predict; SIGTERM to `twinops serve` ─►
                         every request answered 200 or refused at connect, never reset
                         mid-way; the prediction log holds a row for every answered item
    kill -9 mid-train    `twinops train` killed after its first epoch checkpoints; rerun ─►
                         it says it resumed, at the epoch the checkpoint holds

Why `twinops serve` and process groups: that is what a supervisor runs and signals; a
BentoML server is an arbiter plus worker processes, and a hard kill takes all of them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest

from benchmarks.processes import free_port, wait_http_ok
from tests.integration.conftest import REPO, build_champion, state_env
from tests.layout import MEASUREMENT_COLUMNS, TURBOFAN

pytestmark = pytest.mark.integration

ROWS_PER_BATCH = 4


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A fleet, its features and one champion, built in this process (tiny profile)."""
    root = tmp_path_factory.mktemp("faults")
    env = {**os.environ, **state_env(root, n_assets=8), "TWINOPS_FEAST__TTL_DAYS": "400",
           "TWINOPS_SERVING__WORKERS": "2", "_ROOT": str(root)}
    build_champion(env)
    return env


@pytest.fixture(scope="module")
def settings(env):
    from features.settings import Settings

    return Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"],
                    feast={"ttl_days": 400})


class TwinopsServe:
    """`twinops serve` in its own process group (what a supervisor starts and signals)."""

    def __init__(self, env: dict, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(env["_ROOT"]) / f"{name}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from pipelines.cli import app; app()", "serve", "--port",
             str(self.port)], cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_http_ok(f"{self.url}/healthz", self.proc, 180, log_text=self.log_path.read_text)

    def signal_group(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        self.log.close()


def _batch(asset: str, start: datetime) -> list[dict]:
    """ROWS_PER_BATCH valid readings of a new asset (every channel mid-range)."""
    middle = {ch.name: (ch.min + ch.max) / 2 for ch in (*TURBOFAN.settings, *TURBOFAN.sensors)}
    return [{"asset_id": asset, "cycle": c,
             "timestamp": (start + timedelta(minutes=c)).isoformat(),
             **{m: middle[m] + 0.001 * c for m in MEASUREMENT_COLUMNS}}
            for c in range(1, ROWS_PER_BATCH + 1)]


# ------------------------------------------------------------ kill -9 mid-ingest
def test_kill_9_mid_ingest_stores_every_answered_row_exactly_once(env, settings):
    from features import datastore
    from features.store import offline_path

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    outcomes: dict[str, object] = {}  # asset of a batch -> status code or exception name
    answered = threading.Semaphore(0)
    stop = threading.Event()

    def client(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                asset = f"kill-{k}-{i:04d}"
                try:
                    r = http.post(f"{server.url}/ingest", json={"readings": _batch(asset, start)})
                    outcomes[asset] = r.status_code
                    answered.release()
                except httpx.HTTPError as exc:
                    outcomes[asset] = type(exc).__name__
                    return

    server = TwinopsServe(env, "ingest-kill")
    try:
        threads = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for _ in range(12):  # mid-way: a dozen batches answered, three more in flight
            assert answered.acquire(timeout=120), server.log_path.read_text()[-3000:]
        server.signal_group(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        server.proc.wait(timeout=30)  # reaped: a zombie would still count as in the group
        assert server.group_gone(30)
    finally:
        server.close()

    ok = sorted(a for a, o in outcomes.items() if o == 200)
    lost = sorted(a for a, o in outcomes.items() if o != 200)
    assert len(ok) >= 12 and all(isinstance(o, str) for a, o in outcomes.items() if a in lost), \
        outcomes  # answered batches were all 200; the rest died with the server

    stored = datastore.load_readings(settings)  # the store reads after the kill
    ids = stored["asset_id"].astype(str)
    assert not stored.duplicated(["asset_id", "cycle"]).any()
    counts = ids[ids.str.startswith("kill-")].value_counts()
    assert all(counts.get(a) == ROWS_PER_BATCH for a in ok), counts.to_dict()
    assert set(counts.to_numpy()) <= {ROWS_PER_BATCH}, counts.to_dict()  # never half a batch
    registered = set(datastore.load_assets(settings)["asset_id"].astype(str))
    assert set(ok) <= registered
    offline = pd.read_parquet(offline_path(settings))
    assert set(ok) <= set(offline["asset_id"].astype(str))  # every answered batch's features

    server = TwinopsServe(env, "ingest-restart")
    try:  # the restarted server takes the unanswered batches (whole or not there) and more
        for asset in [*lost, "kill-after-restart"]:
            r = httpx.post(f"{server.url}/ingest", json={"readings": _batch(asset, start)},
                           timeout=60)
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] == ROWS_PER_BATCH
        pred = httpx.post(f"{server.url}/predict", json={"asset_ids": [ok[0]]}, timeout=60)
        assert pred.status_code == 200 and "error" not in pred.json()["predictions"][0], pred.text
    finally:
        server.close()
    final = datastore.load_readings(settings)
    ids = final["asset_id"].astype(str)
    assert (ids[ids.str.startswith("kill-")].value_counts() == ROWS_PER_BATCH).all()
    assert len(final) == len(stored) + ROWS_PER_BATCH * (len(lost) + 1) - sum(
        counts.get(a, 0) for a in lost)


# ------------------------------------------------------------ SIGTERM under load
def test_sigterm_under_load_answers_or_refuses_every_request_and_logs_every_answer(
        env, settings):
    from features import datastore
    from features.prediction_log import PredictionLog

    assets = sorted(set(datastore.load_readings(settings)["asset_id"].astype(str))
                    - {a for a in datastore.load_readings(settings)["asset_id"].astype(str)
                       if a.startswith("kill-")})[:3]
    before = PredictionLog(settings.prediction_log_path).count()
    server = TwinopsServe(env, "sigterm-load")
    answered_items = [0]
    failures: list[str] = []
    refused = threading.Event()
    lock = threading.Lock()
    started = threading.Semaphore(0)

    def client() -> None:
        # keep-alive, as a real client pool: the hard case for a shutdown (an idle
        # connection may be closed while the client is sending on it)
        with httpx.Client(timeout=60) as http:
            for i in range(100_000):
                try:
                    r = http.post(f"{server.url}/predict", json={"asset_ids": assets})
                except httpx.ConnectError:
                    refused.set()
                    return  # refused at connect: shutdown had begun, nothing was accepted
                except httpx.HTTPError as exc:
                    with lock:
                        failures.append(f"{type(exc).__name__}: {exc}")
                    return
                if r.status_code != 200:
                    with lock:
                        failures.append(f"{r.status_code}: {r.text[:300]}")
                    return
                with lock:
                    answered_items[0] += sum("error" not in p for p in r.json()["predictions"])
                if i == 20:
                    started.release()

    try:
        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        for _ in threads:
            assert started.acquire(timeout=120), failures
        server.proc.send_signal(signal.SIGTERM)  # to `twinops serve` (it exec'd bentoml)
        assert server.proc.wait(timeout=90) is not None
        for t in threads:
            t.join(timeout=60)
        assert server.group_gone(30)
    finally:
        server.close()
    assert not failures, (failures, server.log_path.read_text()[-3000:])
    assert refused.is_set()
    logged = PredictionLog(settings.prediction_log_path).count() - before
    assert logged == answered_items[0] > 0


# ------------------------------------------------------------ kill -9 mid-training
def test_kill_9_mid_training_resumes_from_the_last_epoch_checkpoint(env, settings):
    import re

    import torch

    resume = Path(settings.state_dir) / "training-resume"
    cmd = [sys.executable, "-c", "from pipelines.cli import app; app()", "train",
           "--asset-type", "turbofan"]
    log_path = Path(env["_ROOT"]) / "train-killed.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while not list(resume.glob("*/*/last.ckpt")):  # the first epoch is checkpointed
                assert proc.poll() is None, log_path.read_text()[-3000:]
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.1)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
    (run,) = resume.iterdir()  # one training, killed mid-way
    saved = {d.name.replace("__", "/"): torch.load(d / "last.ckpt", weights_only=False)["epoch"]
             for d in run.iterdir() if (d / "last.ckpt").exists()}
    assert saved, list(run.rglob("*"))

    rerun = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = rerun.stdout + rerun.stderr
    assert rerun.returncode == 0, out[-3000:]
    resumed = {m[0]: int(m[1]) for m in re.findall(
        r"resuming (\S+) from its checkpoint after epoch (\d+)", out)}
    # every candidate killed mid-training resumed after its last whole epoch: at most the
    # epoch in progress at the kill was lost
    assert resumed == {name: epoch + 1 for name, epoch in saved.items()}, out[-3000:]
    assert re.search(r"trained twinops-rul-turbofan v\d+", out), out[-3000:]
    assert not run.exists()  # the run completed: its checkpoints are gone
