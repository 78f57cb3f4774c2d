"""The header deadline on uvicorn's real protocols, driven by a fake clock and transport."""

from __future__ import annotations

import asyncio
import json

import pytest

from serving import header_timeout

TIMEOUT = 10.0


class FakeTimer:
    def __init__(self, loop: FakeLoop, when: float, callback) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class FakeTask:
    def add_done_callback(self, _callback) -> None:
        pass


class FakeLoop:
    """call_later on a clock moved by advance(); create_task queues the ASGI coroutine,
    run_tasks() runs it (on a real loop, to completion)."""

    def __init__(self) -> None:
        self.now, self.timers, self.tasks = 0.0, [], []

    def call_later(self, delay, callback, *args):
        timer = FakeTimer(self, self.now + delay, lambda: callback(*args))
        self.timers.append(timer)
        return timer

    def create_task(self, coro, **_kwargs):
        self.tasks.append(coro)
        return FakeTask()

    def run_tasks(self) -> None:
        while self.tasks:
            asyncio.run(self.tasks.pop(0))

    def close(self) -> None:
        """Drop the ASGI coroutines never run (a request left waiting on purpose)."""
        for coro in self.tasks:
            coro.close()

    def advance(self, seconds: float) -> None:
        self.now += seconds
        for timer in sorted(self.timers, key=lambda t: t.when):
            if timer.when <= self.now and not timer.cancelled:
                timer.cancelled = True
                timer.callback()


class FakeTransport:
    def __init__(self) -> None:
        self.written, self.closed = b"", False

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name, default=None):
        return {"peername": ("10.0.0.7", 5555), "sockname": ("127.0.0.1", 3000)}.get(name,
                                                                                      default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def ok_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def never_answers(scope, receive, send):
    await asyncio.Event().wait()  # never run here: the fake loop only queues it


@pytest.fixture(params=["httptools", "h11"])
def connect(request):
    import uvicorn
    from uvicorn.server import ServerState

    protocol_class = getattr(header_timeout, {"httptools": "HttpToolsProtocol",
                                              "h11": "H11Protocol"}[request.param])

    loops = []

    def make(app=ok_app):
        # keep-alive far longer than the deadline: only the deadline can close here
        config = uvicorn.Config(app=app, timeout_keep_alive=1000, log_config=None)
        loop, transport = FakeLoop(), FakeTransport()
        loops.append(loop)
        proto = protocol_class(config=config, server_state=ServerState(), app_state={},
                               _loop=loop)
        proto.header_timeout_s = TIMEOUT
        proto.connection_made(transport)
        return proto, loop, transport

    yield make
    for loop in loops:
        loop.close()


def _is_408(transport: FakeTransport, says: str) -> None:
    head, _, body = transport.written.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), transport.written
    assert b"connection: close" in head.lower()
    assert says in json.loads(body)["error"]
    assert transport.closed


def test_a_connection_that_sends_nothing_is_408_at_the_deadline(connect):
    proto, loop, transport = connect()
    loop.advance(TIMEOUT - 0.1)
    assert not transport.closed
    loop.advance(0.2)
    _is_408(transport, "no request within 10 s")


def test_trickled_bytes_do_not_renew_the_deadline(connect):
    proto, loop, transport = connect()
    request = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
    for i in range(0, len(request), 2):  # 2 bytes every 0.1 s: 6 s for the lot
        proto.data_received(request[i:i + 2])
        loop.advance(0.1)
        if transport.closed:
            break
    loop.advance(TIMEOUT - loop.now + 0.05)
    _is_408(transport, "request line and headers not complete within 10 s")


def test_complete_headers_cancel_it_for_a_request_that_takes_long(connect):
    proto, loop, transport = connect(never_answers)
    loop.advance(TIMEOUT - 1)
    proto.data_received(b"POST /predict HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
    loop.advance(10 * TIMEOUT)  # the body never comes (serving.guard's deadline, not this)
    assert transport.written == b"" and not transport.closed
    assert proto.cycle.keep_alive  # not even marked to close after its response


def test_after_a_response_idle_is_keep_alive_s_and_the_next_request_gets_a_new_deadline(
        connect):
    proto, loop, transport = connect()
    loop.advance(TIMEOUT - 1)
    proto.data_received(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
    loop.run_tasks()
    assert transport.written.startswith(b"HTTP/1.1 200")
    transport.written = b""
    loop.advance(5 * TIMEOUT)  # idle: uvicorn's keep-alive (1000 s here) decides, not this
    assert not transport.closed
    proto.data_received(b"GET /livez HT")
    loop.advance(TIMEOUT - 0.1)
    assert not transport.closed
    loop.advance(0.2)
    _is_408(transport, "request line and headers not complete")


def test_a_second_request_on_the_connection_completes_normally(connect):
    proto, loop, transport = connect()
    for _ in range(2):
        proto.data_received(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        loop.run_tasks()
        loop.advance(TIMEOUT + 1)
    assert transport.written.count(b"HTTP/1.1 200") == 2 and b"408" not in transport.written
    assert not transport.closed


def test_closed_connection_cancels_it(connect):
    proto, loop, transport = connect()
    proto.data_received(b"GET /")
    proto.connection_lost(None)
    transport.written = b""
    loop.advance(2 * TIMEOUT)
    assert transport.written == b""


def test_a_pipelined_request_stalled_behind_a_response_does_not_cut_it():
    """httptools parses a pipelined request while the one before is answered: its stall
    must not put a 408 into that response; the connection closes after it instead."""
    import uvicorn
    from uvicorn.server import ServerState

    config = uvicorn.Config(app=never_answers, timeout_keep_alive=1000, log_config=None)
    loop, transport = FakeLoop(), FakeTransport()
    proto = header_timeout.HttpToolsProtocol(config=config, server_state=ServerState(),
                                             app_state={}, _loop=loop)
    proto.header_timeout_s = TIMEOUT
    proto.connection_made(transport)
    proto.data_received(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\nGET /next HT")
    loop.advance(TIMEOUT + 1)
    assert transport.written == b"" and not transport.closed
    assert proto.cycle.keep_alive is False  # uvicorn closes once /slow is answered
    loop.close()


def test_install_makes_uvicorn_load_these_protocols(monkeypatch):
    import uvicorn
    from uvicorn import config as uvicorn_config

    monkeypatch.setattr(uvicorn_config, "HTTP_PROTOCOLS", dict(uvicorn_config.HTTP_PROTOCOLS))
    header_timeout.install()
    for http, name in (("auto", "HttpToolsProtocol"), ("httptools", "HttpToolsProtocol"),
                       ("h11", "H11Protocol")):
        config = uvicorn.Config(app=ok_app, http=http, log_config=None)
        config.load()
        assert config.http_protocol_class is getattr(header_timeout, name), http


def test_the_service_module_installs_it():
    from uvicorn import config as uvicorn_config

    import serving.service  # noqa: F401 - the import is what is tested

    assert uvicorn_config.HTTP_PROTOCOLS["auto"] == header_timeout.PROTOCOLS["auto"]


def test_the_default_comes_from_settings(monkeypatch):
    monkeypatch.setenv("TWINOPS_SERVING__HEADER_TIMEOUT_S", "3.5")
    header_timeout.configured_timeout_s.cache_clear()
    try:
        assert header_timeout.configured_timeout_s() == 3.5
    finally:
        header_timeout.configured_timeout_s.cache_clear()
