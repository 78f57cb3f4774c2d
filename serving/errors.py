"""Error answers from service code (4xx bad input, 503 a store unavailable), one shape.

    service code ─► ApiError(status, message, detail=[{loc, msg}]) ─► raised
    service method ─► except ApiError as e: return e.response()  ─► JSON 4xx / 503

Why not BentoML's exceptions: BentoML wraps their message in a one-element list
(`[{"error": ...}]`) and has no way to carry per-row details; returning a
Starlette response from the API method is supported and keeps one error shape
for every error of the service: {"error": str, "detail": [{"loc": [...], "msg": str}]}.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "detail": self.detail}

    def response(self):
        from starlette.responses import JSONResponse

        return JSONResponse(self.body(), status_code=self.status)
