"""A 4xx is one log line naming the reason; BentoML's 4xx traceback is dropped, a 5xx's kept."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from serving.error_log import (
    BENTOML_EXCEPTION_LOGGER,
    ClientErrorLog,
    DropClientErrorTracebacks,
    install_filter,
    one_line,
    reason_of,
)


def answer(status, body, path="/predict", method="POST"):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": body[:5], "more_body": True})
        await send({"type": "http.response.body", "body": body[5:]})

    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(ClientErrorLog(app)({"type": "http", "method": method, "path": path},
                                    None, send))
    return sent


def test_a_4xx_is_one_line_with_method_path_status_and_the_field(caplog):
    caplog.set_level(logging.INFO, logger="bentoml.twinops.serving")
    bentoml_400 = json.dumps({"error": "1 validation error for Input", "detail": [
        {"loc": ["asset_ids"], "msg": "Input should be a valid list", "type": "list_type"}]})
    sent = answer(400, bentoml_400.encode())
    assert [m.get("status") for m in sent][:1] == [400] and len(sent) == 3  # passed on whole
    answer(200, b'{"predictions": []}')
    answer(401, b'{"error": "missing or invalid API key"}', path="/a\nb\x00" + "z" * 1000,
           method="GET")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "POST /predict 400 1 validation error for Input (asset_ids: Input should be a valid "
        "list)",
        "GET /a\\nb\\x00" + "z" * (200 - 9) + "... 401 missing or invalid API key",
    ]
    assert not any(r.exc_info for r in caplog.records)


def test_reason_of_every_body_shape():
    assert reason_of(b'[{"error": "bad media type"}]') == "bad media type"  # BentoMLException
    assert reason_of(json.dumps({"error": "2 event(s) rejected", "detail": [
        {"loc": ["events", 0], "msg": "a"}, {"loc": ["events", 1], "msg": "b"}]}).encode()
                     ) == "2 event(s) rejected (events.0: a; 1 more)"
    assert reason_of(b"Not Found") == "Not Found"  # Starlette's plain-text 404
    assert reason_of(b"\xff") == "\ufffd"
    assert one_line("x" * 10, 4) == "xxxx..."


def _record(exc):
    try:
        raise exc
    except BaseException:
        import sys

        return logging.LogRecord(BENTOML_EXCEPTION_LOGGER, logging.ERROR, __file__, 1,
                                 "Exception on %s [%s]", ("/predict", "POST"), sys.exc_info())


def test_bentoml_tracebacks_dropped_for_4xx_exceptions_only():
    from http import HTTPStatus

    from bentoml.exceptions import BentoMLException

    class Input(BaseModel):
        n: int

    with pytest.raises(ValidationError) as invalid:
        Input(n="x")
    keep = DropClientErrorTracebacks().filter
    assert not keep(_record(invalid.value))
    assert not keep(_record(BentoMLException("no", error_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE)))
    assert keep(_record(BentoMLException("boom", error_code=HTTPStatus.INTERNAL_SERVER_ERROR)))
    assert keep(_record(RuntimeError("a bug")))
    assert keep(logging.LogRecord("x", logging.INFO, __file__, 1, "plain", (), None))
    target = logging.getLogger(BENTOML_EXCEPTION_LOGGER)
    try:
        install_filter()
        install_filter()
        assert sum(isinstance(f, DropClientErrorTracebacks) for f in target.filters) == 1
    finally:
        for f in list(target.filters):
            target.removeFilter(f)
