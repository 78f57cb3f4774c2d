"""RequestGuard (ASGI, no server): keys as SHA-256 digests, 401 / 413 / bad JSON 400, replay."""

from __future__ import annotations

import asyncio
import json

from serving.guard import RequestGuard, key_digest

KEY = "s3cret"


def run(guard, *, path="/predict", method="POST", headers=(), chunks=(b'{"a": 1}',)):
    sent, seen = [], {}
    body_parts = list(chunks)

    async def receive():
        if body_parts:
            chunk = body_parts.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(body_parts)}
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    async def app(scope, receive_, send_):
        message = await receive_()
        seen["body"] = message.get("body")
        await send_({"type": "http.response.start", "status": 200, "headers": []})

    scope = {"type": "http", "path": path, "method": method,
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    asyncio.run(guard(app)(scope, receive, send))
    status = sent[0]["status"] if sent else None
    body = json.loads(sent[1]["body"]) if len(sent) > 1 else None
    return status, body, seen.get("body")


def make():
    def factory(inner):
        return RequestGuard(inner, auth_enabled=True, key_digests=[key_digest(KEY)],
                            max_body_bytes=100)
    return factory


def test_missing_or_wrong_key_is_401_and_the_app_never_runs():
    for headers in ((), (("x-api-key", "nope"),), (("authorization", "Basic " + KEY),)):
        status, body, reached = run(make(), headers=headers)
        assert status == 401 and "API key" in body["error"] and reached is None


def test_valid_key_by_bearer_or_header_reaches_the_app_with_the_body():
    for headers in ((("authorization", f"Bearer {KEY}"),), (("x-api-key", KEY),)):
        status, _, reached = run(make(), headers=headers)
        assert status == 200 and reached == b'{"a": 1}'


def test_probes_are_open():
    for path in ("/healthz", "/readyz", "/metrics", "/docs.json"):
        status, _, _ = run(make(), path=path, method="GET", chunks=())
        assert status == 200


def test_body_limit_by_header_and_while_streaming():
    key = ("x-api-key", KEY)
    status, body, _ = run(make(), headers=(key, ("content-length", "101")))
    assert status == 413 and "100" in body["error"]
    status, _, reached = run(make(), headers=(key,), chunks=(b"{" + b" " * 60, b" " * 60 + b"}"))
    assert status == 413 and reached is None


def test_unparsable_json_is_400_before_bentoml():
    key = ("x-api-key", KEY)
    for chunks, needle in (((b"{oops",), "not valid JSON"), ((b"",), "empty body"),
                           ((b"[1, 2]",), "JSON object")):
        status, body, _ = run(make(), headers=(key,), chunks=chunks)
        assert status == 400 and needle in body["error"]


def test_auth_off_only_when_configured():
    def factory(inner):
        return RequestGuard(inner, auth_enabled=False, key_digests=[], max_body_bytes=100)

    status, _, _ = run(factory)
    assert status == 200


def test_a_body_that_is_not_json_by_content_type_is_415_before_bentoml():
    key = ("x-api-key", KEY)
    for media in ("multipart/form-data", "text/plain; charset=utf-8",
                  "application/x-www-form-urlencoded"):
        status, body, reached = run(make(), headers=(key, ("content-type", media)))
        assert status == 415 and "application/json" in body["error"] and reached is None
    status, _, reached = run(make(), headers=(key, ("content-type", "Application/JSON")))
    assert status == 200 and reached == b'{"a": 1}'


def test_deep_nesting_is_400_not_a_recursion_error():
    def factory(inner):
        return RequestGuard(inner, auth_enabled=False, key_digests=[], max_body_bytes=10**6)

    for depth in (33, 5000):  # past the limit; and past Python's recursion limit
        body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
        status, answer, reached = run(factory, chunks=(body,))
        assert status == 400 and "deeper than 32" in answer["error"] and reached is None
    ok = b'{"a": ' + b"[" * 30 + b"]" * 30 + b"}"
    assert run(factory, chunks=(ok,))[0] == 200


def test_a_key_outside_its_scopes_is_403_and_an_unscoped_key_may_do_all():
    reader, loader = "reader-key", "loader-key"

    def factory(inner):
        return RequestGuard(inner, auth_enabled=True, max_body_bytes=100,
                            key_digests=[key_digest(k) for k in (KEY, reader, loader)],
                            key_scopes={key_digest(reader): ["predict"],
                                        key_digest(loader): ["ingest", "feedback"]})

    def call(key, path):
        return run(factory, path=path, headers=(("x-api-key", key),))

    for path in ("/predict", "/fleet/risk", "/whatif"):
        assert call(reader, path)[0] == 200
    for path in ("/feedback", "/ingest", "/something-else"):
        status, body, reached = call(reader, path)
        assert status == 403 and path in body["error"] and reached is None
        assert "predict" in body["error"]
    assert call(loader, "/feedback")[0] == 200 and call(loader, "/predict")[0] == 403
    for path in ("/predict", "/feedback", "/ingest"):  # configured before scopes existed
        assert call(KEY, path)[0] == 200


def test_an_error_answer_lists_the_first_problems_and_counts_the_rest():
    from serving.errors import MAX_DETAIL, ApiError

    body = ApiError(422, "all rejected", [{"loc": ["readings", i], "msg": "bad"}
                                          for i in range(MAX_DETAIL + 7)]).body()
    assert len(body["detail"]) == MAX_DETAIL and "7 more" in body["error"]
    assert ApiError(400, "one", [{"loc": ["x"], "msg": "bad"}]).body()["error"] == "one"


def _stalled(messages):
    """receive() that hands out `messages`, then waits like a client that sends no more."""
    async def receive():
        if messages:
            await asyncio.sleep(messages[0][0])
            return messages.pop(0)[1]
        await asyncio.sleep(3600)
    return receive


def _call_with(receive, headers=(), timeout=0.2):
    sent = []

    async def send(message):
        sent.append(message)

    async def app(scope, receive_, send_):  # pragma: no cover - must not be reached
        raise AssertionError("an incomplete body must not reach the app")

    guard = RequestGuard(app, auth_enabled=False, key_digests=[], max_body_bytes=10**6,
                         key_scopes={}, body_timeout_s=timeout)
    scope = {"type": "http", "path": "/predict", "method": "POST",
             "headers": [(k.encode(), v.encode()) for k, v in headers]}
    import time

    started = time.monotonic()
    asyncio.run(asyncio.wait_for(guard(scope, receive, send), 5))
    return sent, time.monotonic() - started


def test_a_body_shorter_than_its_content_length_is_408_at_the_deadline_and_closes():
    part = {"type": "http.request", "body": b'{"asset_ids"', "more_body": True}
    sent, took = _call_with(_stalled([(0, part)]), headers=(("content-length", "500"),))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    error = json.loads(sent[1]["body"])["error"]
    assert "0.2 s" in error and "12 of the 500 bytes" in error
    assert 0.2 <= took < 1.0


def test_a_trickling_body_is_408_at_one_deadline_for_the_whole_body():
    drip = [(0.05, {"type": "http.request", "body": b" ", "more_body": True})
            for _ in range(100)]  # 5 s of a byte every 50 ms: each chunk well in time
    sent, took = _call_with(_stalled(drip))
    assert sent[0]["status"] == 408 and "not its end" in json.loads(sent[1]["body"])["error"]
    assert took < 1.0


def test_a_body_in_time_is_not_cut_off():
    chunks = [(0.05, {"type": "http.request", "body": b'{"a"', "more_body": True}),
              (0.05, {"type": "http.request", "body": b": 1}", "more_body": False})]
    seen = {}

    async def app(scope, receive_, send_):
        seen["body"] = (await receive_())["body"]

    guard = RequestGuard(app, auth_enabled=False, key_digests=[], max_body_bytes=100,
                         key_scopes={}, body_timeout_s=1.0)
    asyncio.run(guard({"type": "http", "path": "/predict", "method": "POST", "headers": []},
                      _stalled(chunks), None))
    assert seen["body"] == b'{"a": 1}'
