"""serving.shutdown: a stopping worker refuses new connections and tells clients to leave."""

from __future__ import annotations

import asyncio
import socket

import pytest

from serving import shutdown


@pytest.fixture
def draining():
    shutdown.draining.set()
    yield
    shutdown.draining.clear()


def test_stop_listening_makes_a_shared_listener_refuse_connections():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    other_copy = listener.dup()  # as the arbiter holds its own fd of the workers' socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # listening
        assert shutdown.stop_listening() >= 1
        with pytest.raises(ConnectionRefusedError):  # refused, though a copy is still open
            socket.create_connection(("127.0.0.1", port), timeout=2)
    finally:
        other_copy.close()
        listener.close()


async def _respond(scope, receive, send):
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"connection", b"keep-alive")]})
    await send({"type": "http.response.body", "body": b"{}"})


def _headers():
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(shutdown.DrainMiddleware(_respond)({"type": "http"}, None, send))
    return dict(sent[0]["headers"])


def test_responses_say_connection_close_only_while_draining(draining):
    assert _headers()[b"connection"] == b"close"
    shutdown.draining.clear()
    assert _headers()[b"connection"] == b"keep-alive"
