"""The BentoML service: each asset type's champion behind HTTP, hot-swapped, guarded, logged.

    TWINOPS_* env ─► Settings ─► per asset type with a champion, a Lane (serving.predict):
                               ├─► ModelHolder(load_by_alias("champion")) ◄─ poll: alias moved?
                               │     (SHA-256 verified; a refused version leaves the old one,
                               │      or, refused at start, nothing: that type answers 503
                               │      with the reason until the alias moves to a good one)
                               ├─► features.online reader (Feast's SQLite table, direct read)
                               ├─► asset registry (asset id -> type), re-read on a miss
                               ├─► BackgroundLogWriter(PredictionLog)  (flushed on shutdown)
                               ├─► SIGTERM: stop listening, drain keep-alive clients, stop
                               │     (serving.shutdown)
                               └─► metrics: twinops_model_info{model_name,model_version,alias}
    uvicorn's protocol + a header deadline (408 on a request line / headers not complete in
    serving.header_timeout_s: serving.header_timeout)
    ─► DrainMiddleware (a stopping worker: Connection: close) ─► ClientErrorLog (a 4xx: one
    log line, no traceback: serving.error_log)
    ─► HealthzMiddleware (/healthz, /readyz) ─► RequestGuard (401 / 413 / 408 / bad JSON 400)
    ─► routes:
    POST /predict        {"asset_ids": [...], "horizon"?}  ─► serving.predict.predict_assets
                         (+ "explain": true: per-sensor contributions, serving.explain)
    POST /predict_window {"readings": [...], "horizon"?}   ─► serving.window.predict_window
    POST /ingest         {"readings": [...]}                ─► serving.ingest.ingest_readings
    POST /feedback       {"events": [...]}                  ─► serving.ingest.record_events
    POST /fleet/risk     {"asset_type"?, "page"?, ...}      ─► serving.fleet.fleet_risk
    POST /recommend      {"asset_ids": [...]}               ─► serving.fleet.recommend_assets
    POST /whatif         {"asset_id", "profile": {...}}      ─► serving.whatif.answer_whatif
    GET /metrics (BentoML's Prometheus endpoint, labelled by route: serving.route_labels),
    GET /docs.json (OpenAPI)

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
generations the cyclic GC scans, so collections stay short. `explain: true` (integrated
gradients, serving.explain) is the exception: it runs in a worker thread.
/predict_window, /ingest and /feedback do pandas/parquet work and stay
synchronous (BentoML runs them in its thread pool, off the event loop).

Everything heavy happens in `__init__`, once per worker process, never at import.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import bentoml

from serving.decision_schemas import (
    FleetRiskRequest,
    FleetRiskResponse,
    RecommendRequest,
    RecommendResponse,
)
from serving.error_log import ClientErrorLog
from serving.guard import RequestGuard
from serving.header_timeout import install as install_header_timeout
from serving.health import HealthzMiddleware
from serving.route_labels import install as install_route_labels
from serving.schemas import (
    FeedbackRequest,
    FeedbackResponse,
    IngestRequest,
    IngestResponse,
    PredictRequest,
    PredictResponse,
    WindowRequest,
)
from serving.shutdown import DrainMiddleware
from serving.whatif_schemas import WhatIfRequest, WhatIfResponse

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
        from serving.predict import Lane, make_lane
        from training.registry import get_alias_version

        torch.set_num_threads(1)
        self.settings = settings = get_settings()
        store = get_store(settings)
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
        # Every type with a champion alias gets a lane, also when its champion is refused
        # (the holder then starts empty and keeps polling): a refused champion must not
        # crash the worker, which BentoML would restart every few seconds forever.
        self._lanes: dict[str, Lane] = {}
        for name in sorted(settings.declared_types()):
            typed = settings.for_type(name)
            if get_alias_version(typed, ALIAS) is None:
                continue  # no champion of this type: its assets get a per-item error
            holder = ModelHolder(
                None,
                where_is=functools.partial(get_alias_version, typed, ALIAS),
                load=functools.partial(self._load_model, typed),
                poll_s=settings.serving.model_poll_s,
                on_swap=self._publish_model,
                on_refused=lambda _version, _exc: self._swaps.labels("refused").inc(),
            )
            holder.check_once()  # the first load, here: a refusal is logged once, not raised
            self._lanes[name] = make_lane(typed, holder, make_online_reader(typed, store))
        if not self._lanes:
            raise RuntimeError(f"no asset type has a {ALIAS!r} model to serve: promote one first")
        self.registry = AssetRegistry(settings)
        self.prediction_log = BackgroundLogWriter(
            PredictionLog(settings.prediction_log_path),
            max_queue=settings.serving.log_queue_size,
        )
        gc.collect()
        gc.freeze()
        for lane in self._lanes.values():
            lane.holder.start()
        from serving.shutdown import on_sigterm

        on_sigterm(settings.serving.shutdown_drain_s)  # refuse, drain, then uvicorn stops
        if settings.serving.auth_enabled and not settings.serving.api_key_sha256:
            logger.warning("auth is on but no API key hashes are configured: every call is 401")
        served = ", ".join(f"{lane.holder.current.name} v{lane.holder.current.version}"
                           for lane in self.lanes.values()) or "nothing"
        refused = ", ".join(self.refused())  # each refusal was logged once, with its reason
        logger.info("serving %s%s (state dir %s)", served, f"; champion of {refused} refused, "
                    f"polling {ALIAS!r} for another version" if refused else "",
                    settings.state_dir)

    @property
    def lanes(self) -> dict[str, Any]:
        """The lanes that serve a model now (a lane whose champion was refused at start joins
        when its holder loads one). Every route reads this, so none meets an empty holder."""
        return {n: lane for n, lane in self._lanes.items() if lane.holder.current is not None}

    def refused(self) -> dict[str, str]:
        """{asset type: why nothing is served} for the lanes without a model."""
        return {n: lane.holder.reason for n, lane in self._lanes.items()
                if lane.holder.current is None}

    # ---- model lifecycle -----------------------------------------------------------
    @staticmethod
    def _load_model(settings):
        """The champion, only with an approval the audit chain verifies."""
        from pipelines.approvals import load_champion
        from serving.predict import ServedModel, check_feature_compatibility

        model = ServedModel.from_loaded(load_champion(settings), alias=ALIAS)
        from features.store import view_columns

        check_feature_compatibility(model, view_columns(settings))
        return model

    def _publish_model(self, model) -> None:
        published = self.__dict__.setdefault("_published", {})
        previous = published.get(model.name)
        if previous is not None:
            self._model_info.labels(previous.name, previous.version, ALIAS).set(0)
            self._swaps.labels("ok").inc()
        self._model_info.labels(model.name, model.version, ALIAS).set(1)
        published[model.name] = model

    @bentoml.on_shutdown
    def shutdown(self) -> None:
        for lane in self._lanes.values():
            lane.holder.stop()
        self.prediction_log.close()

    def _lane_for(self, asset_id: str | None, asset_type: str | None):
        """The lane of an asset: its given type, else the registry's, else the default."""
        from serving.errors import ApiError

        kind = asset_type or (self.registry.types([asset_id]).get(asset_id) if asset_id else None)
        kind = kind or self.settings.asset_type
        lanes = self.lanes
        if kind not in lanes:
            why = self.refused().get(kind)
            raise ApiError(400 if kind not in self.settings.declared_types() else 503,
                           f"no model of asset type {kind!r} is being served"
                           + (f": {why}" if why else ""),
                           [{"loc": ["asset_type"], "msg": why or "no champion of this type"}])
        return lanes[kind]

    # ---- routes ------------------------------------------------------------------
    @bentoml.api(route="/predict", input_spec=PredictRequest)
    async def predict(self, **params: Any) -> PredictResponse:
        from serving.predict import predict_fleet
        from serving.schemas import parse_request

        # Re-validate with the configured batch limit (ValidationError -> 400 by BentoML).
        request = parse_request(params, max_batch=self.settings.serving.max_batch)
        from serving.errors import ApiError

        # refused before lanes: a lane that loads in between is in both, and then it serves
        refused = self.refused()
        lanes = self.lanes
        try:
            if request.explain:  # gradients, ~1.5 ms per asset (serving.explain): off the loop
                import asyncio

                return await asyncio.to_thread(
                    predict_fleet, request, lanes=lanes, type_of=self.registry.types,
                    log=self.prediction_log, refused=refused)
            return predict_fleet(request, lanes=lanes, type_of=self.registry.types,
                                 log=self.prediction_log, refused=refused)
        except ApiError as exc:  # every asked type's champion refused: 503 with the reason
            return exc.response()
        except sqlite3.Error as exc:  # no online store yet / unreadable: the server's fault
            return ApiError(503, f"online feature store unavailable: {exc}").response()

    @bentoml.api(route="/predict_window", input_spec=WindowRequest)
    def predict_window(self, **params: Any) -> PredictResponse:
        from serving.window import predict_window

        request = WindowRequest.model_validate(params)

        def answer():
            first = request.readings[0].get("asset_id")
            lane = self._lane_for(str(first) if first is not None else None, request.asset_type)
            return predict_window(
                request.readings, request.horizon,
                asset_type=self.settings.for_type(lane.asset_type).type,
                model=lane.holder.current, default_horizon=lane.horizon,
                log=self.prediction_log, ttl=lane.stale_after)

        return self._answer(len(request.readings), "readings", answer)

    @bentoml.api(route="/ingest", input_spec=IngestRequest)
    def ingest(self, **params: Any) -> IngestResponse:
        from serving.ingest import ingest_readings

        request = IngestRequest.model_validate(params)

        def answer():
            response = ingest_readings(self.settings, request.readings)
            self.registry.refresh()  # new assets are registered now
            return response

        return self._answer(len(request.readings), "readings", answer)

    @bentoml.api(route="/feedback", input_spec=FeedbackRequest)
    def feedback(self, **params: Any) -> FeedbackResponse:
        from serving.ingest import record_events

        request = FeedbackRequest.model_validate(params)
        return self._answer(len(request.events), "events", lambda: record_events(
            self.settings, [e.model_dump() for e in request.events]))

    @bentoml.api(route="/fleet/risk", input_spec=FleetRiskRequest)
    def fleet_risk(self, **params: Any) -> FleetRiskResponse:
        from features.datastore import last_failures, load_assets
        from features.maintenance import criticality_of
        from serving.errors import ApiError
        from serving.fleet import fleet_risk

        request = FleetRiskRequest.model_validate(params)
        if request.asset_type and request.asset_type not in self.lanes:
            why = self.refused().get(request.asset_type)  # refused: the server's fault, 503
            return ApiError(503 if why else 400, f"no model of asset type "
                            f"{request.asset_type!r} is being served" + (f": {why}" if why else ""),
                            [{"loc": ["asset_type"], "msg": why or "not served"}]).response()
        assets = load_assets(self.settings)
        return fleet_risk(request, lanes=self.lanes, assets=assets,
                          criticality=criticality_of(self.settings, assets),
                          failed_at=last_failures(self.settings))

    @bentoml.api(route="/recommend", input_spec=RecommendRequest)
    def recommend(self, **params: Any) -> RecommendResponse:
        from features.maintenance import profiles_of
        from serving.fleet import recommend_assets

        request = RecommendRequest.model_validate(params)
        return recommend_assets(request, lanes=self.lanes, type_of=self.registry.types,
                                profiles=profiles_of(self.settings, request.asset_ids))

    @bentoml.api(route="/whatif", input_spec=WhatIfRequest)
    def whatif(self, **params: Any) -> WhatIfResponse:
        """RUL under a future operating profile vs the current one (docs/whatif.md). Sync:
        the pump's physics takes seconds, so it runs in BentoML's thread pool."""
        from serving.errors import ApiError
        from serving.whatif import WhatIfError, answer_whatif

        request = WhatIfRequest.model_validate(params)
        try:
            return WhatIfResponse(**answer_whatif(request, settings=self.settings,
                                                  type_of=self.registry.types, lanes=self.lanes))
        except WhatIfError as exc:
            return ApiError(exc.status, exc.message,
                            [{"loc": exc.field.split("."), "msg": exc.message}]).response()

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
        """Liveness with what each lane serves; answers while a champion is refused too
        (the worker is alive: /readyz is the probe that says it cannot answer)."""
        models = {}
        for name, lane in self._lanes.items():
            model = lane.holder.current
            models[name] = {"model_name": getattr(model, "name", None),
                            "model_version": getattr(model, "version", None),
                            "model_alias": getattr(model, "alias", None),
                            "refused": lane.holder.reason, "hot_swap": lane.holder.report()}
        first = next((m for m in models.values() if m["model_version"] is not None),
                     next(iter(models.values())))
        return {"status": "ok", **{k: first[k] for k in ("model_name", "model_version",
                                                         "model_alias", "hot_swap")},
                "models": models,
                "prediction_log": {"pending_groups": self.prediction_log.pending,
                                   "written": self.prediction_log.written,
                                   "failures": self.prediction_log.failures}}

    def ready(self) -> dict[str, Any]:
        """Ready when some type's model serves and every served type's store answers.

        Why one refused type does not make the whole server unready: every replica reads
        the same registry, so all of them would leave the load balancer together and the
        types that do serve would go dark too; the refused type answers 503 per request
        and is named here (`refused`, `reason`)."""
        errors = {}
        lanes = self.lanes
        for name, lane in lanes.items():
            try:
                lane.fetch.ping()
            except Exception as exc:  # noqa: BLE001 — reported, not raised
                errors[name] = f"{type(exc).__name__}: {exc}"
        refused = self.refused()
        first = next(iter(lanes.values()), None)
        reasons = [f"{n}: {why}" for n, why in refused.items()]
        if errors:
            reasons.append("feature store: " + "; ".join(f"{n}: {e}" for n, e in errors.items()))
        return {"ready": bool(lanes) and not errors,
                "reason": "; ".join(reasons) or None,
                "model_version": first.holder.current.version if first else None,
                "model_versions": {n: getattr(lane.holder.current, "version", None)
                                   for n, lane in self._lanes.items()},
                "refused": refused,
                "feature_store": "ok" if not errors else "; ".join(
                    f"{n}: {e}" for n, e in errors.items())}


class AssetRegistry:
    """asset id -> asset type, from the asset registry (features.datastore), cached.

    Re-read when an asked id is missing, at most once a second: an asset registered by
    another worker's /ingest or a batch ingest is found within a second, and a flood of
    unknown ids cannot turn every request into a file read.
    """

    def __init__(self, settings) -> None:
        self.settings = settings
        self._types: dict[str, str] = {}
        self._read_at = 0.0
        self.refresh()

    def refresh(self) -> None:
        import time

        from features.datastore import load_assets

        assets = load_assets(self.settings)
        self._types = dict(zip(assets["asset_id"].astype(str), assets["asset_type"].astype(str),
                               strict=True))
        self._read_at = time.monotonic()

    def types(self, asset_ids) -> dict[str, str]:
        import time

        known = self._types
        if any(a not in known for a in asset_ids) and time.monotonic() - self._read_at > 1.0:
            self.refresh()
            known = self._types
        return {a: known[a] for a in asset_ids if a in known}


# Starlette nests these in order (first = outer). The drain marks every response of a
# stopping worker `Connection: close` (serving.shutdown); the error log sees every 4xx, the
# guard's too; the last two only act on their own paths: the probes stay open, everything
# else passes the guard before reaching a route.
TwinService.add_asgi_middleware(DrainMiddleware)
TwinService.add_asgi_middleware(ClientErrorLog)
TwinService.add_asgi_middleware(HealthzMiddleware)
TwinService.add_asgi_middleware(RequestGuard)
# /metrics labelled by route, not by raw path (serving.route_labels): BentoML's metrics
# middleware is outside the two above, so it is swapped where BentoML looks it up.
install_route_labels()
# A deadline for request lines and headers, which uvicorn does not bound (slowloris): its
# protocol table is read after this import, when the worker's uvicorn Config loads
# (serving.header_timeout).
install_header_timeout()
