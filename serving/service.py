"""The BentoML service: the champion model behind HTTP, hot-swapped, guarded, logged.

    TWINOPS_* env ─► Settings ─┬─► ModelHolder(load_by_alias("champion")) ◄─ poll: alias moved?
                               │     (SHA-256 verified; a refused version leaves the old one)
                               ├─► features.online reader (Feast's SQLite table, direct read)
                               ├─► BackgroundLogWriter(PredictionLog)  (flushed on shutdown)
                               └─► metrics: twinops_model_info{model_name,model_version,alias}
    RequestGuard (401 / 413 / bad JSON 400) ─► HealthzMiddleware (/healthz, /readyz) ─► routes:
    POST /predict        {"asset_ids": [...], "horizon"?}  ─► serving.predict.predict_assets
    POST /predict_window {"readings": [...], "horizon"?}   ─► serving.window.predict_window
    POST /ingest         {"readings": [...]}                ─► serving.ingest.ingest_readings
    POST /feedback       {"events": [...]}                  ─► serving.ingest.record_events
    GET /metrics (BentoML's Prometheus endpoint), GET /docs.json (OpenAPI)

Run (from the repository root, or anywhere with --working-dir):

    export TWINOPS_STATE_DIR=/abs/state             # explicit: the default is <cwd>/.twinops
    export BENTOML_HOME=$TWINOPS_STATE_DIR/bentoml  # else BentoML writes to ~/bentoml
    export TWINOPS_SERVING__API_KEY_SHA256='["<python -m serving.guard KEY>"]'
    bentoml serve serving.service:TwinService --working-dir /path/to/repo --port 3000

Latency (docs/serving.md "Why the hot path is fast"; figures in docs/benchmarks.md,
`twinops benchmark serve`): /predict is an `async` method that runs inline on
the event loop — the work is one indexed SQLite read and one tiny forward pass,
cheaper than the hop to BentoML's thread pool; torch is pinned to one intra-op
thread, because on a forward pass this small a thread pool adds p99 stalls
rather than speed (docs/experiments.md#serving); the access log is off;
`gc.freeze()` after loading moves the model and libraries out of the
generations the cyclic GC scans, so collections stay short.
/predict_window, /ingest and /feedback do pandas/parquet work and stay
synchronous (BentoML runs them in its thread pool, off the event loop).

Everything heavy happens in `__init__`, once per worker process, never at import.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import bentoml

from serving.guard import RequestGuard
from serving.health import HealthzMiddleware
from serving.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    IngestRequest,
    IngestResponse,
    PredictRequest,
    PredictResponse,
    WindowRequest,
)

# A child of "bentoml" so the message goes through BentoML's configured handlers.
logger = logging.getLogger("bentoml.twinops.serving")

ALIAS = "champion"


@bentoml.service(
    # A plain name: BENTOML_CONFIG_OPTIONS keys (services.twinops.workers=2) cannot hold "-".
    name="twinops",
    # The per-request access log is noise at fleet scale (and a write per request); errors
    # are still logged.
    logging={"access": {"enabled": False}},
    traffic={"timeout": 60},
)
class TwinService:
    def __init__(self) -> None:
        import gc

        import prometheus_client
        import torch

        from features.online import make_online_reader
        from features.prediction_log import PredictionLog
        from features.settings import get_settings
        from features.store import get_store
        from serving.hot_swap import ModelHolder
        from serving.log_writer import BackgroundLogWriter
        from training.registry import get_alias_version

        torch.set_num_threads(1)
        self.settings = settings = get_settings()
        self.holder = ModelHolder(
            self._load_model(),
            where_is=lambda: get_alias_version(settings, ALIAS),
            load=self._load_model,
            poll_s=settings.serving.model_poll_s,
            on_swap=self._publish_model,
            on_refused=lambda _version, _exc: self._swaps.labels("refused").inc(),
        )
        self.reader = make_online_reader(settings, get_store(settings))
        self.ttl = self.reader.ttl
        self.prediction_log = BackgroundLogWriter(
            PredictionLog(settings.prediction_log_path),
            max_queue=settings.serving.log_queue_size,
        )
        self._model_info = prometheus_client.Gauge(
            name="twinops_model_info",
            documentation="1 for the model version this worker serves now, 0 for earlier ones.",
            labelnames=["model_name", "model_version", "alias"],
            multiprocess_mode="livemax",
        )
        self._swaps = prometheus_client.Counter(
            name="twinops_model_swaps",
            documentation="Hot-swap attempts by outcome (ok / refused).",
            labelnames=["outcome"],
        )
        self._publish_model(self.holder.current)
        gc.collect()
        gc.freeze()
        self.holder.start()
        if settings.serving.auth_enabled and not settings.serving.api_key_sha256:
            logger.warning("auth is on but no API key hashes are configured: every call is 401")
        logger.info("serving %s version %s (state dir %s)", self.holder.current.name,
                    self.holder.current.version, settings.state_dir)

    # ---- model lifecycle -----------------------------------------------------------
    def _load_model(self):
        from features.transforms import FEATURE_COLUMNS
        from serving.predict import ServedModel, check_feature_compatibility
        from training.registry import load_by_alias

        model = ServedModel.from_loaded(load_by_alias(self.settings, ALIAS), alias=ALIAS)
        check_feature_compatibility(model, FEATURE_COLUMNS)
        return model

    def _publish_model(self, model) -> None:
        previous = getattr(self, "_published", None)
        if previous is not None:
            self._model_info.labels(previous.name, previous.version, ALIAS).set(0)
            self._swaps.labels("ok").inc()
        self._model_info.labels(model.name, model.version, ALIAS).set(1)
        self._published = model

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        self.holder.stop()
        self.prediction_log.close()

    # ---- routes ------------------------------------------------------------------
    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, **params: Any) -> PredictResponse:
        from serving.predict import predict_assets
        from serving.schemas import parse_request

        # Re-validate with the configured batch limit (ValidationError -> 400 by BentoML).
        request = parse_request(params, max_batch=self.settings.serving.max_batch)
        try:
            return predict_assets(
                request,
                model=self.holder.current,  # read ONCE: the whole answer comes from this version
                fetch_features=self.reader,
                default_horizon=self.settings.serving.horizon,
                log=self.prediction_log,
                ttl=self.ttl,
            )
        except sqlite3.Error as exc:  # no online store yet / unreadable: the server's fault
            from serving.errors import ApiError

            return ApiError(503, f"online feature store unavailable: {exc}").response()

    @bentoml.api(route="/predict_window", input_spec=WindowRequest)
    def predict_window(self, **params: Any) -> PredictResponse:
        from serving.window import predict_window

        request = WindowRequest.model_validate(params)
        return self._answer(
            len(request.readings), "readings", lambda: predict_window(
                [r.model_dump() for r in request.readings], request.horizon,
                window=self.settings.window, model=self.holder.current,
                default_horizon=self.settings.serving.horizon, log=self.prediction_log,
                ttl=self.ttl))

    @bentoml.api(route="/ingest", input_spec=IngestRequest)
    def ingest(self, **params: Any) -> IngestResponse:
        from serving.ingest import ingest_readings

        request = IngestRequest.model_validate(params)
        return self._answer(len(request.readings), "readings",
                            lambda: ingest_readings(self.settings, request.readings))

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    def feedback(self, **params: Any) -> FeedbackResponse:
        from serving.ingest import record_events

        request = FeedbackRequest.model_validate(params)
        return self._answer(len(request.events), "events", lambda: record_events(
            self.settings, [e.model_dump() for e in request.events]))

    def _answer(self, n_rows: int, field: str, call: Callable[[], Any]) -> Any:
        """Row limit, then `call()`; a ApiError becomes its JSON 4xx (never a 500)."""
        from serving.errors import ApiError

        limit = self.settings.serving.max_rows
        try:
            if n_rows > limit:
                raise ApiError(400, f"at most {limit} {field} per request, got {n_rows}",
                                  [{"loc": [field], "msg": "too many rows"}])
            return call()
        except ApiError as exc:
            return exc.response()

    # ---- probes (serving.health) -----------------------------------------------------
    def health(self) -> dict[str, Any]:
        model = self.holder.current
        return {"status": "ok", "model_name": model.name, "model_version": model.version,
                "model_alias": model.alias, "hot_swap": self.holder.report(),
                "prediction_log": {"pending_groups": self.prediction_log.pending,
                                   "written": self.prediction_log.written,
                                   "failures": self.prediction_log.failures}}

    def ready(self) -> dict[str, Any]:
        model = self.holder.current
        try:
            self.reader.ping()
            store_ok, store_error = True, None
        except Exception as exc:  # noqa: BLE001 — reported, not raised
            store_ok, store_error = False, f"{type(exc).__name__}: {exc}"
        return {"ready": model is not None and store_ok, "model_version": model.version,
                "feature_store": "ok" if store_ok else store_error}


# Starlette nests these in order (first = outer). Both only act on their own paths:
# the probes stay open, everything else passes the guard before reaching a route.
TwinService.add_asgi_middleware(HealthzMiddleware)
TwinService.add_asgi_middleware(RequestGuard)
