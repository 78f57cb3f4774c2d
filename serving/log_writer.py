"""Background writer of the prediction log: requests enqueue, one thread commits in groups.

    request threads ─► append(records) ─► bounded queue ─► writer thread
        (stamps logged_at now; returns       (full: append        │ drains everything queued,
         at once unless the queue is full)    waits = backpressure)│ ONE transaction per group
                                                                  ▼
                                                  PredictionLog (SQLite WAL, synchronous=FULL)
    shutdown (BentoML on_shutdown / atexit) ─► close() ─► flush: queue drained, thread joined

Why not write in the request: a durable SQLite commit is an fsync, serialised
across workers — it would take most of the 2 ms latency budget — and a write
that fails there can only be logged and its rows dropped.
Why a queue + group commit: the fsync moves off the request path, and under
load one commit carries every row queued meanwhile, so throughput rises with
load instead of collapsing on the file lock.
Why nothing is lost: the queue is bounded and `append` blocks when it is full
(requests slow down; rows are never dropped); a failed commit is retried with
backoff, keeping its rows; shutdown flushes the queue before the process exits.
The window a hard kill (SIGKILL, power loss) can lose is what was queued and
not yet committed — typically one group, a few milliseconds of traffic.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from features.prediction_log import PredictionLog, utc_iso

logger = logging.getLogger("bentoml.twinops.prediction_log")


class BackgroundLogWriter:
    """Same `append` interface as PredictionLog; durable on flush()/close()."""

    def __init__(self, log: PredictionLog, *, max_queue: int = 10_000,
                 retry_s: float = 0.5) -> None:
        self.log = log
        self.retry_s = retry_s
        self._queue: queue.Queue[list[Mapping[str, Any]] | None] = queue.Queue(max_queue)
        self.written = 0
        self.failures = 0
        self._thread = threading.Thread(target=self._run, name="twinops-log-writer",
                                        daemon=True)
        self._closed = False
        self._thread.start()
        atexit.register(self.close)

    # ---- producer side -----------------------------------------------------------
    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        if self._closed:
            raise RuntimeError("prediction log writer is closed")
        now = utc_iso()
        batch = [r if r.get("logged_at") else {**r, "logged_at": now} for r in records]
        if batch:
            self._queue.put(batch)  # blocks when full: backpressure, never a drop
        return len(batch)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything appended so far is committed. True on success."""
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True)
        waiter.start()
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():  # pragma: no cover - disk hung
            logger.error("prediction log writer did not finish; %d groups pending", self.pending)

    # ---- consumer side -----------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            groups = [first]
            while True:  # drain what is queued now: one commit for all of it
                try:
                    groups.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(g is None for g in groups)
            rows = [r for g in groups if g is not None for r in g]
            self._commit(rows)
            for _ in groups:
                self._queue.task_done()

    def _commit(self, rows: list[Mapping[str, Any]]) -> None:
        delay = self.retry_s
        while rows:
            try:
                self.written += self.log.append(rows)
                return
            except ValueError:
                # A malformed record must not block the others: write them one by one.
                self._commit_each(rows)
                return
            except Exception:  # noqa: BLE001 — disk full / locked: keep the rows, retry
                self.failures += 1
                logger.exception("prediction log commit failed; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _commit_each(self, rows: list[Mapping[str, Any]]) -> None:
        for row in rows:
            try:
                self.written += self.log.append([row])
            except ValueError:
                self.failures += 1
                logger.exception("malformed prediction record skipped: %r", row)
