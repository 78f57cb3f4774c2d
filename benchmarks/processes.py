"""Local server processes for benchmarks and integration tests: start, wait, stop.

    free_port() ─► Popen(..., start_new_session=True) ─► wait_http_ok(url) ─► stop_group(proc)

Servers (BentoML, MLflow, Prefect) fork workers; each is started in its own
process group so stopping it (SIGTERM, then SIGKILL after a grace period)
takes the workers with it and leaves nothing listening.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http_ok(url: str, proc: subprocess.Popen, timeout: float = 180.0, auth=None,
                 log_text=lambda: "") -> None:
    """Poll `url` until it answers 200; fail fast (with the log) if the process dies."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2, auth=auth).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{url} not ready after {timeout} s: {log_text()[-3000:]}")


def stop_group(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
