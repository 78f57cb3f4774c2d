"""A worker's graceful stop: refuse new connections at once, let keep-alive clients leave.

    SIGTERM ─► `twinops serve` (BentoML's circus arbiter) ─► SIGTERM to each worker
      worker: drain.on_sigterm ─► the shared listening socket shut down: connects refused
                                ─► for `drain_s`, every response says `Connection: close`
                                   (DrainMiddleware): each keep-alive client gets its answer
                                   and leaves after it
                                ─► uvicorn's own shutdown: in-flight requests finish, idle
                                   connections close, on_shutdown flushes the prediction log

Why: without it a client saw `Connection reset by peer` on a request it had sent. BentoML's
arbiter owns the listening socket and hands it to the workers; on SIGTERM each worker's
uvicorn closes its copy, but the arbiter closes its own only after every worker has exited
(circus stops watchers, then sockets), seconds later while requests drain and the log
flushes. In between the kernel still completes handshakes for the arbiter's copy, queues
the connections, nobody accepts them, and closing the socket resets them all. Shutting the
socket down (not just closing one fd: `shutdown` acts on the socket every process shares)
makes a connect in that window a clean refusal. And uvicorn closes an idle keep-alive
connection at once, which races a client that is sending its next request on it (the
request reaches a closed socket: another reset); the drain lets that client finish on a
response that tells it to reconnect instead, and the reconnect is refused cleanly.
What remains is HTTP's own race: a connection idle through the whole drain that sends just
as it is closed; RFC 9112 §9.3.1 leaves that to the client to retry.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading

logger = logging.getLogger("bentoml.twinops.shutdown")

#: Set when this worker's stop began (read by DrainMiddleware on every response).
draining = threading.Event()


def stop_listening() -> int:
    """Shut down every listening socket of this process; returns how many. Found by their
    file descriptors, because BentoML passes the socket to the worker as a bare fd."""
    stopped = 0
    for name in os.listdir("/dev/fd"):
        try:
            sock = socket.socket(fileno=os.dup(int(name)))
        except (OSError, ValueError):
            continue  # not a socket (or the fd listdir itself used)
        try:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
                sock.shutdown(socket.SHUT_RDWR)
                stopped += 1
        except OSError:
            pass
        finally:
            sock.close()
    return stopped


def on_sigterm(drain_s: float) -> None:
    """Chain this worker's SIGTERM handler (uvicorn's, installed before the service is
    built) behind a drain: call from the worker's main thread."""
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):  # not under uvicorn (a test, a script): nothing to chain
        return

    def handle(sig, frame) -> None:
        if draining.is_set():  # a second SIGTERM: stop now
            previous(sig, frame)
            return
        draining.set()
        logger.info("stopping: %d listening socket(s) shut, draining keep-alive clients "
                    "for %.1f s", stop_listening(), drain_s)
        # uvicorn's handler only sets its exit flag, so it may run on a timer thread
        timer = threading.Timer(drain_s, previous, (sig, frame))
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handle)


class DrainMiddleware:
    """While draining, every HTTP response carries `Connection: close` (uvicorn then closes
    the connection after it, and the client opens a new one, which is refused)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message) -> None:
            if message["type"] == "http.response.start" and draining.is_set():
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
