"""Every 4xx answer logged as one line (method path status reason), never as a traceback.

    request ─► ClientErrorLog ─► HealthzMiddleware ─► RequestGuard ─► BentoML routes
                   │ watches the answer: 400 <= status < 500 ─► one line on
                   │   "bentoml.twinops.serving": `POST /predict 400 <error> (<field>: <msg>)`
                   └ on BentoML's "bentoml._internal.server.http_app" logger: a filter drops
                     the "Exception on <path> [POST]" record, with its traceback, of an
                     exception BentoML itself answers with a 4xx

Why: BentoML 1.4's api_endpoint_wrapper (_bentoml_impl/server/app.py) answers a pydantic
ValidationError with 400 and a 4xx BentoMLException with its status, and logs each with
`log_exception` (logger.error, exc_info=True): a full traceback for every bad request
(976 of them, 29.7 MB of log, in one probe run), while the guard's 401/413/415 and the
service's own 4xx (ApiError) logged nothing. A 4xx is the client's mistake, worth one line
that says which; a 5xx is the server's and keeps BentoML's traceback.

The line is built from what the client was answered (the JSON body's `error` and its first
`detail` entry), so it names the field the answer names. Path and reason are escaped
(`\\n`, `\\x00` stay visible, never break the line) and cut, so a 10 KB path or a path with
a newline is still one short line.
"""

from __future__ import annotations

import json
import logging
from typing import Any

# A child of "bentoml" so the line goes through BentoML's configured handlers.
logger = logging.getLogger("bentoml.twinops.serving")
#: The logger BentoML's `log_exception` writes to (bentoml._internal.server.http_app).
BENTOML_EXCEPTION_LOGGER = "bentoml._internal.server.http_app"
#: Longest path / reason written; the rest is cut and marked.
MAX_PATH, MAX_REASON = 200, 300
#: Bytes of a 4xx body read for its reason; error bodies are bounded (serving.errors).
MAX_BODY = 64_000


def one_line(text: str, limit: int) -> str:
    """`text` escaped to printable ASCII (no newline, no NUL) and cut at `limit`."""
    escaped = text.encode("unicode_escape").decode("ascii")
    return escaped if len(escaped) <= limit else escaped[:limit] + "..."


def reason_of(body: bytes) -> str:
    """The reason a 4xx body gives: its `error`, plus the first `detail` entry's field and
    message (BentoML's 400 says only "1 validation error for Input" in `error`)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body.decode("utf-8", "replace")
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]  # BentoML wraps a BentoMLException's message in a one-element list
    if not isinstance(data, dict):
        return str(data)
    reason = str(data.get("error", ""))
    detail = data.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        first = detail[0]
        loc = ".".join(str(p) for p in first.get("loc") or [])
        more = f"; {len(detail) - 1} more" if len(detail) > 1 else ""
        reason += f" ({loc}: {first.get('msg', '')}{more})"
    return reason


def is_client_error(exc: BaseException | None) -> bool:
    """Would BentoML answer `exc` with a 4xx? (ValidationError: 400; a BentoMLException:
    its error code.)"""
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return True
    if isinstance(exc, BentoMLException):
        return int(exc.error_code.value) < 500
    return False


class DropClientErrorTracebacks(logging.Filter):
    """Drops BentoML's traceback record of an exception it answers with a 4xx (that answer
    gets its one line from ClientErrorLog); every other record passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not is_client_error(exc)


def install_filter() -> None:
    """Put DropClientErrorTracebacks on BentoML's exception logger, once per process."""
    target = logging.getLogger(BENTOML_EXCEPTION_LOGGER)
    if not any(isinstance(f, DropClientErrorTracebacks) for f in target.filters):
        target.addFilter(DropClientErrorTracebacks())


class ClientErrorLog:
    """Pure ASGI middleware: one log line per 4xx answer (module docstring). Built in the
    worker after BentoML configured logging, so the filter is installed here."""

    def __init__(self, app: Any) -> None:
        self.app = app
        install_filter()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        status, body, size = 0, [], 0

        async def watch(message: dict) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and 400 <= status < 500:
                if size < MAX_BODY:
                    chunk = message.get("body", b"")[:MAX_BODY - size]
                    body.append(chunk)
                    size += len(chunk)
                if not message.get("more_body"):
                    logger.info("%s %s %d %s", scope.get("method", "?"),
                                one_line(scope.get("path", ""), MAX_PATH), status,
                                one_line(reason_of(b"".join(body)), MAX_REASON))
            await send(message)

        await self.app(scope, receive, watch)
