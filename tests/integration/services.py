"""Real local database and broker servers for integration tests: Redis, PostgreSQL, Mosquitto.

Each is the Debian package's own binary (installed by .ci/run), started on a free loopback
port with its data in a fresh temporary directory, waited on until it answers, and stopped
afterwards (SIGTERM to its process group, then SIGKILL). A test module uses the fixtures
(`redis_server`, `postgres_server`, `mqtt_broker`) or calls the `start_*` context managers
when it must stop and restart a server itself (an outage test).

A missing binary fails the test with the package to install rather than skipping: CI
installs them, and a server path that is never exercised is not tested.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.processes import free_port, stop_group


def _binary(name: str, package: str, extra: tuple[str, ...] = ()) -> str:
    found = shutil.which(name) or next((p for pattern in extra for p in sorted(glob.glob(pattern))), None)
    if not found:
        pytest.fail(f"{name} not found: install the Debian package {package} (.ci/run does)")
    return found


def _wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"server did not listen on {port} within {timeout}s: {log.read_text()[-2000:]}")


def _spawn(cmd: list[str], log: Path, port: int, **kw) -> subprocess.Popen:
    out = open(log, "w")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw)
    try:
        _wait_port(port, proc, log)
    except Exception:
        stop_group(proc)
        raise
    return proc


@dataclass
class Service:
    """A running server: its port, its data directory and its process."""

    port: int
    data_dir: Path
    proc: subprocess.Popen
    url: str

    def stop(self) -> None:
        stop_group(self.proc)


@contextlib.contextmanager
def start_redis(port: int | None = None, data_dir: Path | None = None) -> Iterator[Service]:
    """redis-server on 127.0.0.1:<port>, no persistence; url "127.0.0.1:<port>" is Feast's
    connection string."""
    port = port or free_port()
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="twinops-redis-"))
    exe = _binary("redis-server", "redis-server")
    proc = _spawn([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                   "--appendonly", "no", "--dir", str(data_dir)], data_dir / "redis.log", port)
    service = Service(port, data_dir, proc, f"127.0.0.1:{port}")
    try:
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def start_mqtt_broker(port: int | None = None, data_dir: Path | None = None) -> Iterator[Service]:
    """mosquitto on 127.0.0.1:<port> with persistence in `data_dir` (keep the same dir and
    port across a restart and persistent sessions survive); url "mqtt://127.0.0.1:<port>"."""
    port = port or free_port()
    data_dir = Path(data_dir or tempfile.mkdtemp(prefix="twinops-mqtt-"))
    exe = _binary("mosquitto", "mosquitto", ("/usr/sbin/mosquitto",))
    conf = data_dir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {data_dir}/\nautosave_interval 1\nmax_queued_messages 0\n"
    )
    if os.geteuid() == 0:  # mosquitto drops root to its own user, which must own the dir
        shutil.chown(data_dir, "mosquitto")
        conf.write_text(conf.read_text() + "user mosquitto\n")
    proc = _spawn([exe, "-c", str(conf)], data_dir / "mosquitto.log", port)
    service = Service(port, data_dir, proc, f"mqtt://127.0.0.1:{port}")
    try:
        yield service
    finally:
        service.stop()


@contextlib.contextmanager
def start_postgres(port: int | None = None) -> Iterator[Service]:
    """A throwaway PostgreSQL cluster (initdb + postgres) on 127.0.0.1:<port>, trust auth for
    loopback, superuser `postgres`; url "postgresql+psycopg://postgres@127.0.0.1:<port>/postgres".

    PostgreSQL refuses to run as root, so as root the cluster is made and run as the Debian
    package's `postgres` user in a directory it owns (pytest's tmp dirs are private to root).
    """
    port = port or free_port()
    initdb = _binary("initdb", "postgresql", ("/usr/lib/postgresql/*/bin/initdb",))
    postgres = str(Path(initdb).with_name("postgres"))
    data_dir = Path(tempfile.mkdtemp(prefix="twinops-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data_dir, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    pgdata = data_dir / "pgdata"
    subprocess.run([*as_user, initdb, "-D", str(pgdata), "-U", "postgres", "-A", "trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    proc = _spawn([*as_user, postgres, "-D", str(pgdata), "-p", str(port), "-h", "127.0.0.1",
                   "-k", str(data_dir), "-c", "fsync=off"], data_dir / "postgres.log", port)
    service = Service(port, data_dir, proc,
                      f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres")
    try:
        _wait_sql(service)
        yield service
    finally:
        service.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def _wait_sql(service: Service, timeout: float = 30.0) -> None:
    """The port opens before the cluster accepts queries: wait for a SELECT 1."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=service.port, user="postgres",
                                 dbname="postgres", connect_timeout=2) as conn:
                conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise


def create_database(service: Service, name: str) -> str:
    """CREATE DATABASE `name` on a running `start_postgres` cluster; its SQLAlchemy URL."""
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=service.port, user="postgres",
                         dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:{service.port}/{name}"


@pytest.fixture(scope="module")
def redis_server() -> Iterator[Service]:
    with start_redis() as service:
        yield service


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[Service]:
    with start_postgres() as service:
        yield service


@pytest.fixture
def mqtt_broker(tmp_path) -> Iterator[Service]:
    with start_mqtt_broker() as service:
        yield service
