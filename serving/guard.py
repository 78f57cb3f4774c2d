"""Request guard: API keys (401), body size (413), media type (415) and bad JSON (400) first.

    request ─► RequestGuard ─┬─ open path (/healthz /readyz /livez /metrics /docs*) ─► app
                             ├─ no / wrong key (auth on)  ─► 401 {"error": ...}
                             ├─ a key outside its scopes (ROUTE_SCOPES) ─► 403
                             ├─ body > max_body_bytes     ─► 413 (checked on Content-Length,
                             │                                 then while the body streams in)
                             ├─ body not all in within body_timeout_s (a Content-Length larger
                             │  than what is sent, a trickle) ─► 408 at once, connection closed
                             ├─ POST with a Content-Type other than JSON ─► 415
                             ├─ POST JSON body that does not parse, or nests deeper than
                             │  MAX_DEPTH ─► 400 naming the position / the depth
                             └─ else: the buffered body is replayed to BentoML's app

Why a middleware: BentoML 1.4 has no API-key auth of its own, reads the whole
body before any service code runs, and answers a body that is not JSON with a
500 from its serde. Checking here keeps all three out of the service and
before any work is done.

Time: the body is read here, so its deadline is here (settings.serving.body_timeout_s):
without one a body that never completes held the request until BentoML's 60 s traffic
timeout answered 504. Answers sent before the body was read whole say `connection: close`,
so the unread rest cannot keep the connection. Headers come before any ASGI code runs, so
their deadline is in uvicorn's protocol (serving.header_timeout, header_timeout_s).

Keys: clients send `Authorization: Bearer <key>` or `X-API-Key: <key>`; the
configuration holds only SHA-256 hex digests (settings.serving.api_key_sha256),
compared in constant time, so a leaked config file leaks no key.
`python -m serving.guard KEY` prints the digest to put in the config.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sys
from typing import Any

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/livez", "/metrics", "/docs", "/docs.json", "/"})
#: Deepest JSON nesting a request may have: the deepest real body (a reading in a list in
#: an object) is 3 levels; without a bound, a 2 KB body of 1,000 nested lists makes every
#: recursive parser after this one (BentoML's, pydantic's) raise RecursionError, a 500.
MAX_DEPTH = 32


#: The scope a route needs; any other path needs "admin". A key with "admin" may do all.
ROUTE_SCOPES = {"/predict": "predict", "/predict_window": "predict",
                "/fleet/risk": "predict", "/recommend": "predict", "/whatif": "predict",
                "/ingest": "ingest", "/feedback": "feedback"}


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def matching_digest(key: str | None, digests: frozenset[str]) -> str | None:
    """The configured digest of `key`, None if it is not an accepted key."""
    if not key:
        return None
    digest = key_digest(key)
    # compare_digest against each: no early exit that leaks which prefix matched
    hits = [d for d in digests if hmac.compare_digest(digest, d)]
    return hits[0] if hits else None


def allowed(path: str, scopes: list[str] | None) -> bool:
    """May a key with `scopes` (None: unscoped, everything) call `path`?"""
    return scopes is None or "admin" in scopes or ROUTE_SCOPES.get(path, "admin") in scopes


def presented_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1").strip()
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


async def _reply(send: Any, status: int, body: dict, *, close: bool = False) -> None:
    """A JSON answer; `close`: the request body may be unread, so uvicorn closes the
    connection after it instead of parsing the rest as the next request."""
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"connection", b"close")] if close else headers})
    await send({"type": "http.response.body", "body": payload})


class RequestGuard:
    """Pure ASGI middleware; configuration is read from Settings on first request."""

    def __init__(self, app: Any, *, auth_enabled: bool | None = None,
                 key_digests: list[str] | None = None, max_body_bytes: int | None = None,
                 key_scopes: dict[str, list[str]] | None = None,
                 body_timeout_s: float | None = None):
        self.app = app
        self._auth_enabled = auth_enabled
        self._digests = None if key_digests is None else frozenset(key_digests)
        self._max_body = max_body_bytes
        self._body_timeout = body_timeout_s
        self._scopes = None if key_scopes is None else {k.lower(): v
                                                        for k, v in key_scopes.items()}

    def _configure(self) -> None:
        from features.settings import get_settings

        serving = get_settings().serving
        if self._auth_enabled is None:
            self._auth_enabled = serving.auth_enabled
        if self._digests is None:
            self._digests = frozenset(d.lower() for d in serving.api_key_sha256)
        if self._max_body is None:
            self._max_body = serving.max_body_bytes
        if self._scopes is None:
            self._scopes = {k.lower(): list(v) for k, v in serving.api_key_scopes.items()}
        if self._body_timeout is None:
            self._body_timeout = serving.body_timeout_s

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if None in (self._max_body, self._auth_enabled, self._digests, self._scopes,
                    self._body_timeout):
            self._configure()
        headers = scope.get("headers") or []
        if self._auth_enabled:
            digest = matching_digest(presented_key(headers), self._digests)
            if digest is None:
                await _reply(send, 401, {"error": "missing or invalid API key (send "
                                                  "'Authorization: Bearer <key>' or "
                                                  "'X-API-Key')"}, close=True)
                return
            scopes, path = (self._scopes or {}).get(digest), scope.get("path", "")
            if not allowed(path, scopes):
                await _reply(send, 403, {"error": f"this API key may not call {path} (its "
                                                  f"scopes: {', '.join(scopes)}; needs "
                                                  f"{ROUTE_SCOPES.get(path, 'admin')})"},
                             close=True)
                return
        declared = next((v for k, v in headers if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            await _reply(send, 413, {"error": f"body of {int(declared)} bytes exceeds the "
                                              f"limit of {self._max_body} bytes"}, close=True)
            return
        if scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        body, refusal = await self._read_body(receive, declared)
        if refusal is not None:
            await _reply(send, *refusal, close=True)
            return
        if body is None:  # client went away
            return
        content_type = next((v for k, v in headers if k == b"content-type"), b"application/json")
        media = content_type.split(b";")[0].strip().lower()
        if media not in (b"application/json", b""):
            # BentoML would try its multipart / form parsers: a boundary-less multipart body
            # is a 500 there. Every route takes JSON.
            await _reply(send, 415, {"error": "Content-Type must be application/json, got "
                                              f"{media.decode('latin-1')[:100]!r}"})
            return
        error = _json_error(body)
        if error is not None:
            await _reply(send, 400, {"error": error})
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


    async def _read_body(self, receive: Any, declared: bytes | None
                         ) -> tuple[bytes | None, tuple[int, dict] | None]:
        """(body, None); (None, (413 or 408, error body)); (None, None) if the client left.
        One deadline for the whole body, not per chunk: a trickle of a byte a second
        would renew a per-chunk one for ever."""
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self._body_timeout):
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        return None, None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self._max_body:
                        return None, (413, {"error": f"body exceeds the limit of "
                                                     f"{self._max_body} bytes"})
                    chunks.append(chunk)
                    if not message.get("more_body"):
                        return b"".join(chunks), None
        except TimeoutError:
            got = (f"{size} of the {int(declared)} bytes its Content-Length declares"
                   if declared is not None and declared.isdigit() else f"{size} bytes, not its end")
            return None, (408, {"error": f"request body not received within "
                                         f"{self._body_timeout:g} s: {got} arrived"})


def _json_error(body: bytes) -> str | None:
    if not body.strip():
        return "empty body: a JSON object is required"
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        return f"body is not valid JSON: {exc}"
    except RecursionError:
        return f"body nests deeper than {MAX_DEPTH} levels"
    if not isinstance(parsed, dict):
        return f"body must be a JSON object, got {type(parsed).__name__}"
    if _depth_exceeds(parsed, MAX_DEPTH):
        return f"body nests deeper than {MAX_DEPTH} levels"
    return None


def _depth_exceeds(value: Any, limit: int) -> bool:
    """True if `value` nests containers deeper than `limit` (iterative: no recursion)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


if __name__ == "__main__":  # python -m serving.guard KEY -> digest for the config
    for arg in sys.argv[1:]:
        print(key_digest(arg))
