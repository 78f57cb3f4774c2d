"""Hot swap: follow the `champion` alias without a restart and without failing a request.

    poll thread (every model_poll_s) ─► where_is(alias) ─► version changed?
        │ no: sleep                                   │ yes
        │                                             ▼
        │                         load(alias) in THIS thread (download, SHA-256 check, build)
        │                           ├─ ok     ─► self._current = new   (one reference store)
        │                           └─ error  ─► old model keeps serving; last_error, failed
        ▼                                        version remembered (not retried until the
    request ─► holder.current (read once) ─► predict   alias moves again)

Why a reference swap is atomic enough: a request reads `holder.current` once
and uses that ServedModel (predictor + name + version) for the whole request,
so every response names the version that produced it, and a swap between two
requests never mixes models. Rebinding one attribute is atomic under the GIL;
no lock on the request path.

Why poll instead of an MLflow webhook: the embedded registry (sqlite) has no
webhooks, and one `get_model_version_by_alias` per few seconds is cheap.
Why the failed version is not retried: a tampered or broken artifact stays
broken; retrying it every poll would spam the log. Moving the alias (again)
triggers a new attempt. The exception is a refusal marked `retryable` (a champion whose
approval is not in the audit yet, pipelines.approvals): it costs one registry read, so it
is retried every poll and logged once.

Why a holder may start empty (`initial=None`, then `check_once()`): a champion refused at
start (tampered, unloadable, incompatible features) must not crash the worker. A crash made
BentoML restart it every few seconds forever, and nothing answered meanwhile; an empty holder
keeps the worker up, its lane answers 503 naming `reason`, and the poll loads the next
version the alias points to, with no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger("bentoml.twinops.hot_swap")


@dataclass
class SwapStatus:
    swaps: int = 0
    failures: int = 0
    last_error: str | None = None
    failed_version: str | None = None
    last_check: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


class ModelHolder:
    """Holds the served model; a daemon thread swaps it when the alias moves.

    `where_is()` returns the version the alias points to now (None: unknown);
    `load()` returns a ServedModel for the alias (raises on failure). `initial` None: nothing
    served yet (`current` is None, `reason` says why) until a load succeeds.
    """

    def __init__(
        self,
        initial: Any,
        *,
        where_is: Callable[[], str | None],
        load: Callable[[], Any],
        poll_s: float,
        on_swap: Callable[[Any], None] | None = None,
        on_refused: Callable[[str, Exception], None] | None = None,
    ) -> None:
        self._current = initial
        self._where_is = where_is
        self._load = load
        self.poll_s = poll_s
        self._on_swap = on_swap
        self._on_refused = on_refused
        self.status = SwapStatus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def current(self) -> Any:
        """The served model, or None while no version of the alias has loaded."""
        return self._current

    @property
    def reason(self) -> str | None:
        """Why nothing is served (None while a model is): the refusal, else "not loaded"."""
        if self._current is not None:
            return None
        return self.status.last_error or "no version loaded yet"

    def start(self) -> None:
        if self.poll_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="twinops-hot-swap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check_once()

    def check_once(self) -> bool:
        """One poll: swap if the alias moved to a version not yet tried. True if swapped."""
        self.status.last_check = time.time()
        try:
            target = self._where_is()
        except Exception as exc:  # noqa: BLE001 — registry briefly unreachable: keep serving
            self.status.last_error = f"registry lookup failed: {exc}"
            logger.warning("hot swap: %s", self.status.last_error)
            return False
        served = None if self._current is None else self._current.version
        if target is None or target == served:
            return False
        if target == self.status.failed_version:
            return False
        try:
            new = self._load()
        except Exception as exc:  # noqa: BLE001 — any load failure leaves the old model serving
            error = f"version {target} refused: {type(exc).__name__}: {exc}"
            # a refusal that may clear without the alias moving (an approval not yet in
            # the audit) is retried every poll, and counted and logged once
            self.status.failed_version = None if getattr(exc, "retryable", False) else target
            if error == self.status.last_error:
                return False
            self.status.failures += 1
            self.status.last_error = error
            self.status.history.append({"version": target, "ok": False, "at": time.time(),
                                        "error": error})
            logger.error("hot swap: %s; %s", error,
                         f"still serving version {served}" if served else "nothing served")
            if self._on_refused is not None:
                self._on_refused(target, exc)
            return False
        old = self._current
        self._current = new
        self.status.swaps += old is not None  # the first load is not a swap
        self.status.failed_version = None
        self.status.last_error = None
        self.status.history.append({"version": new.version, "ok": True, "at": time.time()})
        if old is None:
            logger.info("loaded version %s", new.version)
        else:
            logger.info("hot swap: version %s -> %s", old.version, new.version)
        if self._on_swap is not None:
            self._on_swap(new)
        return True

    def report(self) -> dict[str, Any]:
        s = self.status
        return {
            "swaps": s.swaps,
            "failures": s.failures,
            "last_error": s.last_error,
            "failed_version": s.failed_version,
            "poll_s": self.poll_s,
        }
