"""GET /healthz and GET /readyz that name the model being served.

    request ─► HealthzMiddleware ─┬─ GET /healthz ─► service.health()  {"status": "ok", model...}
                                  ├─ GET /readyz  ─► service.ready()   200 only when the model is
                                  │                  loaded AND the feature store answers
                                  ├─ GET /docs.json ─► BentoML's OpenAPI document, its schemas in
                                  │                  the 3.0 dialect it declares (openapi30),
                                  │                  its answers and limits true (serving.openapi)
                                  └─ anything else ─► BentoML's app (its /livez stays)

Why a middleware: BentoML 1.4 registers its own GET /healthz (a plain-text
liveness probe) ahead of every service route, and `@bentoml.api` routes are
POST-only, so a service route cannot answer GET /healthz. An ASGI middleware
runs before routing, in the worker process that holds the service instance,
and can ask that instance (`health()`) for the model it serves. Until the
instance exists it answers 503, which is also what a readiness probe wants.

Why /docs.json here: BentoML 1.4 declares `openapi: 3.0.2` but writes pydantic's JSON Schema
2020-12 into it (`{"type": "null"}`, a numeric `exclusiveMinimum`), which OpenAPI 3.0
validators, schemathesis and client generators refuse. Rewriting the document it built is
the one place that covers every model, its own included.
"""

from __future__ import annotations

import functools
import json
from typing import Any

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
DOCS_PATH = "/docs.json"


class HealthzMiddleware:
    """Pure ASGI middleware (no Starlette dependency beyond the protocol)."""

    def __init__(self, app: Any, path: str = HEALTH_PATH, ready_path: str = READY_PATH) -> None:
        self.app = app
        self.routes = {path: "health", ready_path: "ready", DOCS_PATH: "openapi"}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        probe = self.routes.get(scope.get("path")) if scope.get("type") == "http" else None
        if probe is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, body = {"health": self._health, "ready": self._ready,
                        "openapi": openapi_document}[probe]()
        payload = json.dumps(body).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload}
        )

    @staticmethod
    def _health() -> tuple[int, dict]:
        import bentoml

        try:
            service = bentoml.get_current_service()
        except Exception:  # noqa: BLE001 — not instantiated yet
            return 503, {"status": "starting", "model_version": None}
        try:
            return 200, service.health()
        except Exception as exc:  # noqa: BLE001 — a probe must answer, not crash
            return 503, {"status": "error", "error": str(exc), "model_version": None}

    @staticmethod
    def _ready() -> tuple[int, dict]:
        import bentoml

        try:
            service = bentoml.get_current_service()
        except Exception:  # noqa: BLE001 — not instantiated yet
            return 503, {"ready": False, "reason": "service starting"}
        try:
            body = service.ready()
        except Exception as exc:  # noqa: BLE001 — a probe must answer, not crash
            return 503, {"ready": False, "reason": str(exc)}
        return (200 if body.get("ready") else 503), body


@functools.cache
def openapi_document() -> tuple[int, dict]:
    """(200, the service's OpenAPI document in 3.0's dialect, its answers and limits those
    of this configuration: serving.openapi); built once per worker."""
    import bentoml

    from features.settings import get_settings
    from serving.openapi import declare_contract
    from serving.service import TwinService

    try:  # a worker answers requests once its service exists: the types it serves
        served = sorted(bentoml.get_current_service().lanes)
    except Exception:  # noqa: BLE001 — outside a worker (tests, `twinops check`): declared
        served = None
    document = json.loads(json.dumps(TwinService.openapi_spec.asdict(), default=str))
    openapi30(document)
    declare_contract(document, get_settings(), served)
    return 200, document


def openapi30(schema: dict[str, Any]) -> None:
    """Rewrite the schemas in an OpenAPI document (pydantic writes JSON Schema 2020-12) into
    OpenAPI 3.0's dialect, in place: BentoML declares 3.0, and 3.0 validators and client
    generators refuse
    `{"type": "null"}` (3.0 says `nullable: true`), a numeric `exclusiveMinimum` (3.0: a
    boolean beside `minimum`), `const` and `propertyNames`. Walks the whole document."""
    stack = [schema]
    while stack:
        node = stack.pop()
        for key in ("anyOf", "oneOf"):
            options = node.get(key)
            if isinstance(options, list) and {"type": "null"} in options:
                rest = [o for o in options if o != {"type": "null"}]
                node["nullable"] = True
                if len(rest) == 1 and "$ref" not in rest[0]:
                    del node[key]
                    node.update({k: v for k, v in rest[0].items() if k not in node})
                else:
                    node[key] = rest
        if "default" in node and node["default"] is None and "type" in node:
            node["nullable"] = True  # an optional field BentoML flattened to its type
        if node.get("type") == "null":
            del node["type"]
            node["nullable"] = True
        if "const" in node:
            node["enum"] = [node.pop("const")]
        for bound, edge in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(node.get(bound), int | float) and not isinstance(node[bound], bool):
                node[edge], node[bound] = node[bound], True
        node.pop("propertyNames", None)  # 3.0 cannot say it; the server still checks the keys
        stack.extend(v for v in node.values() if isinstance(v, dict))
        stack.extend(i for v in node.values() if isinstance(v, list) for i in v
                     if isinstance(i, dict))
