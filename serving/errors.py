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

#: Problems an error answer lists: the first ones and a count, so that an answer never
#: outgrows its request (5,000 bad rows were a 17 MB 400); every rejected reading is in
#: the quarantine with its reason.
MAX_DETAIL = 50


class ApiError(Exception):
    def __init__(self, status: int, message: str, detail: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail or []

    def body(self) -> dict[str, Any]:
        more = len(self.detail) - MAX_DETAIL
        return {"error": self.message + (f" (the first {MAX_DETAIL} problems listed, "
                                         f"{more} more)" if more > 0 else ""),
                "detail": self.detail[:MAX_DETAIL]}

    def response(self):
        from starlette.responses import JSONResponse

        return JSONResponse(self.body(), status_code=self.status)
