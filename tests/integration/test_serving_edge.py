"""The service's edges over real HTTP: metrics that cannot be blown up, bounded reads, logs.

    module fixture: simulator fleet ─► features ─► one trained champion ─► `bentoml serve`
                    (API key on, body and header timeouts 2 s)
    tests: 500 distinct unknown paths grow /metrics by a constant (one "<unmatched>"
           label), no NUL in it · a body shorter than its Content-Length, or a trickle, is
           408 within seconds (raw sockets) · an idle keep-alive connection is closed ·
           a connection that sends nothing, or trickles its headers, is 408 at the header
           deadline; keep-alive idle is not cut by it · every 4xx is one log line, no
           traceback · /feedback refuses a timestamp that contradicts the cycle
"""

from __future__ import annotations

import json
import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    API_KEY_HEADERS,
    TEST_API_KEY,
    build_champion,
    in_env,
    serving,
    state_env,
    with_api_key,
)

pytestmark = pytest.mark.integration

AUTH = API_KEY_HEADERS
BODY_TIMEOUT_S = 2
HEADER_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("serving-edge")
    env = with_api_key({**os.environ, **state_env(root, n_assets=4),
                        "TWINOPS_SERVING__BODY_TIMEOUT_S": str(BODY_TIMEOUT_S),
                        "TWINOPS_SERVING__HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S)})
    build_champion(env)
    env["_ROOT"] = str(root)
    return env


@pytest.fixture(scope="module")
def server(env):
    with serving(env, Path(env["_ROOT"]) / "server.log") as srv:
        srv.log_path = Path(env["_ROOT"]) / "server.log"
        yield srv


@pytest.fixture(scope="module")
def history(env):
    from features import datastore
    from features.settings import get_settings

    with in_env(env):
        readings = datastore.load_readings(get_settings())
    asset = sorted(set(readings["asset_id"]))[0]
    return readings[readings["asset_id"] == asset].sort_values("cycle").reset_index(drop=True)


def _metrics(server) -> str:
    return httpx.get(f"{server.url}/metrics", timeout=10).text


# ---------------------------------------------------------------- metrics labels
def test_unknown_paths_share_one_metrics_label(server, history):
    asset = str(history["asset_id"].iloc[0])
    with httpx.Client(timeout=10) as client:
        def probe(i: int) -> int:
            path = {0: f"/{uuid.uuid4().hex}", 1: f"/x%00{i}", 2: "/" + uuid.uuid4().hex * 40,
                    3: f"/predict/{i}"}[i % 4]
            headers = AUTH if i % 2 else {}  # 401s on unknown paths, and the router's 404s
            return client.get(f"{server.url}{path}", headers=headers).status_code

        assert client.post(f"{server.url}/predict", json={"asset_ids": [asset]},
                           headers=AUTH).status_code == 200
        assert {probe(i) for i in range(8)} == {401, 404}  # every label that will exist
        before = _metrics(server)
        codes = [probe(i) for i in range(8, 508)]
        after = _metrics(server)
    assert set(codes) == {401, 404}
    # counts and sums grow by a few digits; a label set per path was ~3.8 KB each
    assert len(after) - len(before) < 2_000, (len(before), len(after))
    assert "\x00" not in after and "%00" not in after
    assert 'endpoint="<unmatched>"' in after
    predict = re.search(r'request_total\{endpoint="/predict",[^}]*http_response_code="200"'
                        r'[^}]*\} (\d+)', after)
    assert predict and float(predict.group(1)) >= 1, after[:2000]


# ---------------------------------------------------------------- bounded reads
def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    sock.settimeout(0.2)
    return sock


def _read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float | None]:
    """Everything the server sends within `limit_s`, and when it closed (None: still open)."""
    data, started = b"", time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            return data, time.monotonic() - started
        data += chunk
    return data, None


HEAD = ("POST /predict HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + TEST_API_KEY +
        "\r\nContent-Type: application/json\r\n")


def test_a_body_shorter_than_its_content_length_is_408_within_seconds(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall((HEAD + "Content-Length: 500\r\n\r\n").encode() + b'{"asset_ids": ')
        data, closed_after = _read_until_closed(sock, 15)
        took = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"500 bytes" in data and b"connection: close" in data.lower()
    assert closed_after is not None and took < BODY_TIMEOUT_S + 3, took


def test_a_trickling_body_is_408_at_one_deadline(server):
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall((HEAD + "Transfer-Encoding: chunked\r\n\r\n").encode())
        data = b""
        while not data and time.monotonic() - started < 15:
            try:
                sock.sendall(b"1\r\n \r\n")  # one byte every 0.2 s, never the last chunk
            except OSError:
                break
            try:
                data = sock.recv(65536)
            except TimeoutError:
                pass
        took = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert took < BODY_TIMEOUT_S + 3, took


def test_an_idle_keep_alive_connection_is_closed(server):
    with _connect(server) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
        data, closed_after = _read_until_closed(sock, 15)
    assert data.startswith(b"HTTP/1.1 200"), data[:200]
    assert closed_after is not None and closed_after < 5 + 3, closed_after  # keep-alive 5 s


def test_a_connection_that_sends_nothing_is_408_at_the_header_deadline(server):
    with _connect(server) as sock:
        data, closed_after = _read_until_closed(sock, 15)
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"connection: close" in data.lower() and b"no request within" in data
    assert closed_after is not None and closed_after < HEADER_TIMEOUT_S + 3, closed_after


def test_trickled_headers_are_408_at_one_deadline_and_the_server_still_answers(server):
    request = b"GET /livez HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    with _connect(server) as sock:
        started, data, sent = time.monotonic(), b"", 0
        sock.sendall(request[:8])  # half a request line ...
        while not data and time.monotonic() - started < 15:
            try:  # ... then a byte every 0.2 s: 40 s for the whole request
                sent += sock.send(request[8 + sent:9 + sent])
            except OSError:
                break
            try:
                data = sock.recv(65536)
            except TimeoutError:
                pass
        took = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data[:200]
    assert b"request line and headers not complete" in data, data
    assert took < HEADER_TIMEOUT_S + 3, took
    # the server answers the next client, and on its keep-alive connection the idle time
    # between requests is keep-alive's (5 s), not the header deadline's
    with _connect(server) as sock:
        for i in range(2):
            if i:
                time.sleep(HEADER_TIMEOUT_S + 1)
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
            data = _read_response(sock)
            assert data.startswith(b"HTTP/1.1 200"), (i, data[:200])


def _read_response(sock: socket.socket) -> bytes:
    """One small response (headers and a Content-Length body), read within 10 s."""
    data, started = b"", time.monotonic()
    while time.monotonic() - started < 10:
        head, sep, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length: *(\d+)", head)
        if sep and length and len(body) >= int(length.group(1)):
            return data
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
    return data


# ---------------------------------------------------------------- one line per 4xx
def test_every_4xx_is_one_log_line_and_no_traceback(server, history):
    asset = str(history["asset_id"].iloc[0])
    json_headers = {**AUTH, "Content-Type": "application/json"}
    bad = [  # (method, path, headers, body, status, what the line must name)
        ("POST", "/predict", json_headers, json.dumps({"asset_ids": "a1"}), 400, "asset_ids"),
        ("POST", "/predict", json_headers, json.dumps({"asset_ids": [asset], "horizon": -1}),
         400, "horizon"),
        ("POST", "/fleet/risk", json_headers, json.dumps({"asset_type": "rocket"}), 400,
         "asset_type"),
        ("POST", "/feedback", json_headers, json.dumps({"events": [
            {"asset_id": "ghost", "event": "failure", "cycle": 3}]}), 422, "ghost"),
        ("POST", "/predict", json_headers, "{not json", 400, "not valid JSON"),
        ("POST", "/predict", {**AUTH, "Content-Type": "text/plain"}, "x", 415, "Content-Type"),
        ("GET", "/predict", {}, None, 401, "API key"),
        ("GET", "/nothing/here%0Aforged-line", AUTH, None, 404, "Not Found"),
    ] * 3
    log = server.log_path
    offset = log.stat().st_size
    for method, path, headers, body, status, _ in bad:
        r = httpx.request(method, f"{server.url}{path}", headers=headers, content=body,
                          timeout=30)
        assert r.status_code == status, (path, r.text)
    time.sleep(1.0)  # the worker's log handler writes each line as it is logged
    with open(log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", "replace")
    assert "Traceback" not in text, text[:3000]
    lines = [ln for ln in text.splitlines() if re.search(r"\b(GET|POST) /\S* 4\d\d ", ln)]
    assert len(lines) == len(bad), "\n".join(lines)
    for line, (method, path, _, _, status, names) in zip(lines, bad, strict=True):
        assert f"{method} {path.split('%')[0]}" in line and f" {status} " in line, line
        assert names in line, line
    assert any("\\nforged-line" in ln for ln in lines)  # the decoded newline stays escaped


# ---------------------------------------------------------------- feedback
def test_feedback_whose_timestamp_contradicts_its_cycle_is_422(server, history):
    import pandas as pd

    asset = str(history["asset_id"].iloc[0])
    early = pd.Timestamp(history["timestamp"].iloc[10]).isoformat()
    cycle = int(history["cycle"].iloc[50])
    r = httpx.post(f"{server.url}/feedback", headers=AUTH, timeout=30, json={"events": [
        {"asset_id": asset, "event": "failure", "cycle": cycle, "timestamp": early}]})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert detail[0]["loc"] == ["events", 0]
    assert "timestamp" in detail[0]["msg"] and f"contradicts cycle {cycle}" in detail[0]["msg"]
