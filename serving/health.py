"""GET /healthz and GET /readyz that name the model being served.

    request ─► HealthzMiddleware ─┬─ GET /healthz ─► service.health()  {"status": "ok", model...}
                                  ├─ GET /readyz  ─► service.ready()   200 only when the model is
                                  │                  loaded AND the feature store answers
                                  └─ anything else ─► BentoML's app (its /livez stays)

Why a middleware: BentoML 1.4 registers its own GET /healthz (a plain-text
liveness probe) ahead of every service route, and `@bentoml.api` routes are
POST-only, so a service route cannot answer GET /healthz. An ASGI middleware
runs before routing, in the worker process that holds the service instance,
and can ask that instance (`health()`) for the model it serves. Until the
instance exists it answers 503, which is also what a readiness probe wants.
"""

from __future__ import annotations

import json
from typing import Any

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"


class HealthzMiddleware:
    """Pure ASGI middleware (no Starlette dependency beyond the protocol)."""

    def __init__(self, app: Any, path: str = HEALTH_PATH, ready_path: str = READY_PATH) -> None:
        self.app = app
        self.routes = {path: "health", ready_path: "ready"}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        probe = self.routes.get(scope.get("path")) if scope.get("type") == "http" else None
        if probe is None or scope.get("method") not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, body = self._health() if probe == "health" else self._ready()
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
