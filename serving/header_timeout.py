"""A deadline for a request's line and headers: 408 and close, not an open socket (slowloris).

    connection made ───────────────┐ one deadline (serving.header_timeout_s, 10 s) for the
    after a response: next byte ───┤ whole request line and headers: a byte a second does
                                   │ not renew it
      headers complete in time ────┴► cancelled: the request runs as long as it runs (the
                                       body has its own deadline, serving.guard; streaming,
                                       slow routes are untouched)
      not complete at the deadline ──► `408 Request Timeout` (JSON, `Connection: close`),
                                       connection closed; while an earlier request's response
                                       is still going out (pipelining): no 408 written, the
                                       connection closes once that response is done

Why: uvicorn 0.54 has no header timeout. Its only connection timer, `timeout_keep_alive`,
is armed when a response completes and cancelled when data arrives
(uvicorn/protocols/http/httptools_impl.py `on_response_complete` / `data_received`;
h11_impl likewise); `connection_made` arms none. So a connection that sent nothing, or half
a request line, stayed open for as long as the client kept it, each one a file descriptor
and a protocol object; a few thousand such clients exhaust a worker. No uvicorn `Config`
option bounds it (`h11_max_incomplete_event_size` bounds the size, not the time), no ASGI
middleware runs before the headers are complete, and BentoML's worker
(_bentoml_impl/worker/service.py) builds `uvicorn.Config` itself with `http="auto"` and
only timeout_keep_alive / timeout_graceful_shutdown / backlog. What it does use is
uvicorn's protocol table: `Config.load()` resolves the string `http` through
`uvicorn.config.HTTP_PROTOCOLS`, after the worker has imported the service module. So
`install()` (called by serving.service, at import) points "auto", "httptools" and "h11" at
the subclasses here, which add only the deadline; parsing, keep-alive and everything else
stay uvicorn's.

The idle time between requests on a keep-alive connection is not this deadline's: it starts
at the next request's first byte, so `timeout_keep_alive` (`bentoml serve
--timeout-keep-alive`) still decides how long an idle connection may wait.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

logger = logging.getLogger("bentoml.twinops.serving")

#: Where uvicorn finds the protocol of each `http` setting once install() ran.
PROTOCOLS = {"auto": f"{__name__}:AutoHTTPProtocol",
             "httptools": f"{__name__}:HttpToolsProtocol",
             "h11": f"{__name__}:H11Protocol"}


def install() -> None:
    """Make uvicorn build this module's protocols for `http` "auto" / "httptools" / "h11".
    Idempotent; must run before uvicorn's `Config.load()` (serving.service runs it at
    import, which BentoML's worker does before it builds the Config)."""
    from uvicorn import config

    config.HTTP_PROTOCOLS.update(PROTOCOLS)


@functools.cache
def configured_timeout_s() -> float:
    """settings.serving.header_timeout_s, read once per process (at its first connection)."""
    from features.settings import get_settings

    return get_settings().serving.header_timeout_s


class _HeaderDeadline:
    """The deadline, for either protocol; each subclass says when headers start and end."""

    #: None: configured_timeout_s(). Tests set it per instance.
    header_timeout_s: float | None = None
    _header_timer: Any = None
    _header_started = False  # a byte of this request arrived (else: nothing sent yet)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_deadline()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm_header_deadline(self) -> None:
        if self._header_timer is None:  # armed once per request: later bytes do not renew it
            timeout = self.header_timeout_s or configured_timeout_s()
            self._header_timer = self.loop.call_later(timeout, self._headers_too_slow)

    def _cancel_header_deadline(self) -> None:
        self._header_started = False
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined request stalls behind a response still going out: a 408 now would
            # cut that response. uvicorn closes the connection when it is done instead.
            cycle.keep_alive = False
            return
        timeout = self.header_timeout_s or configured_timeout_s()
        error = (f"request line and headers not complete within {timeout:g} s"
                 if self._header_started else f"no request within {timeout:g} s")
        body = json.dumps({"error": error}).encode()
        head = [b"HTTP/1.1 408 Request Timeout"]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json", b"content-length: %d" % len(body),
                 b"connection: close"]
        transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        transport.close()
        client = "{}:{}".format(*self.client) if self.client else "?"
        logger.info("408 %s (client %s)", error, client)  # one line, like every 4xx


@functools.cache
def _httptools_protocol() -> type:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base

    class HttpToolsProtocol(_HeaderDeadline, Base):
        """httptools calls on_message_begin at a request's first byte and
        on_headers_complete after its blank line."""

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_started = True
            self._arm_header_deadline()

        def on_headers_complete(self) -> None:
            self._cancel_header_deadline()
            super().on_headers_complete()

    return HttpToolsProtocol


@functools.cache
def _h11_protocol() -> type:
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol as Base

    class H11Protocol(_HeaderDeadline, Base):
        """h11 has no per-byte callbacks: after each batch of events, the peer in state
        IDLE with bytes buffered is a request whose headers are not complete yet; any other
        state means its Request event went by (or the connection is done)."""

        def handle_events(self) -> None:
            super().handle_events()
            if self.transport.is_closing() or self.conn.their_state is not h11.IDLE:
                self._cancel_header_deadline()
            elif self.conn.trailing_data[0]:
                self._header_started = True
                self._arm_header_deadline()

    return H11Protocol


def _auto_protocol() -> type:
    """uvicorn's "auto": httptools when it is installed, else h11 (uvicorn.protocols.http.auto)."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return _h11_protocol()
    return _httptools_protocol()


_BUILDERS = {"HttpToolsProtocol": _httptools_protocol, "H11Protocol": _h11_protocol,
             "AutoHTTPProtocol": _auto_protocol}


def __getattr__(name: str) -> type:
    """The protocol classes, built on first use (PEP 562): importing this module (at the
    service's import) must not import uvicorn's protocols or httptools, which may be absent."""
    if name not in _BUILDERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _BUILDERS[name]()
