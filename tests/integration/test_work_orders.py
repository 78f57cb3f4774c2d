"""Work orders end to end: a real champion, real state, a real HTTP receiver that is down.

    simulator fleet ─► ingest ─► features ─► train (tiny) ─► champion
    simulator-live fleet ─► ingest ─► features (online), reporting now; a 1000-cycle
                            horizon: parts for every plan that pays are ordered now
                            (`plan_maintenance`), so most assets get a proposal
    work_orders_task  #1: CMMS down (connection refused)  ─► every proposal pending
    receiver up, first FAIL_FIRST requests answered 503
    work_orders_task  #2: nothing proposed twice; deliveries, some 503 ─► still pending
    twinops work-orders send, until none pending ─► each proposal received exactly once
    work_orders_task  #3: nothing new is proposed or posted
    monitor_flow: the step runs after the drift check; MonitorSummary.work_orders says so

The receiver is stdlib http.server in a thread; it checks the bearer token and accepts a
proposal id once (a second POST of the same Idempotency-Key would be counted).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmarks.processes import free_port
from tests.integration.conftest import REPO, state_env

pytestmark = pytest.mark.integration

FAIL_FIRST = 2
TOKEN = "cmms-test-token"


class Receiver:
    """A CMMS webhook on 127.0.0.1:port: 503 for the first `fail_first` requests, then 201."""

    def __init__(self, port: int, fail_first: int):
        self.requests: list[dict] = []
        self.accepted: dict[str, list[dict]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key")
                receiver.requests.append({"key": key, "auth": self.headers.get("Authorization"),
                                          "path": self.path})
                if len(receiver.requests) <= fail_first:
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.accepted.setdefault(key, []).append(body)
                answer = json.dumps({"work_request": f"WR-{len(receiver.accepted)}"}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A turbofan champion and a live fleet with online features; the CMMS on `port`."""
    root = tmp_path_factory.mktemp("work-orders")
    port = free_port()
    env = {**state_env(root, n_assets=6), "TWINOPS_SERVING__HORIZON": "1000",
           "TWINOPS_WORK_ORDERS__CMMS_URL": f"http://127.0.0.1:{port}/work-requests",
           "TWINOPS_WORK_ORDERS__TOKEN_ENV": "TEST_CMMS_TOKEN",
           "TWINOPS_WORK_ORDERS__BACKOFF_BASE_S": "0.05",
           "TWINOPS_WORK_ORDERS__BACKOFF_MAX_S": "0.2", "TEST_CMMS_TOKEN": TOKEN}
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        from features import datastore
        from features.maintenance import read_metadata_file
        from features.settings import get_settings
        from pipelines.flows import features_flow, ingest_flow, train_flow
        from tests.integration.conftest import make_champion

        settings = get_settings()
        ingest_flow("simulator", settings)
        features_flow(settings)
        make_champion(settings, train_flow(settings=settings).version)
        ingest_flow("simulator-live", settings)
        features_flow(settings)
        live = sorted(a for a in datastore.load_assets(settings)["asset_id"].astype(str)
                      if a.startswith("live"))
        sites = root / "sites.csv"
        sites.write_text("asset_id,site\n" + "".join(f"{a},plant-{a}\n" for a in live[:3]))
        datastore.import_asset_metadata(settings, read_metadata_file(sites))
    return {"settings": settings, "env": env, "port": port, "live": live}


@pytest.fixture
def world_env(world):
    """os.environ with the world's settings; all of it restored afterwards (the CLI's
    runtime.prepare points library homes into the state dir)."""
    import os

    saved = dict(os.environ)
    os.environ.update(world["env"])
    yield world
    os.environ.clear()
    os.environ.update(saved)


def test_proposals_reach_the_cmms_exactly_once_and_none_is_lost_while_it_is_down(world_env):
    import jsonschema
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.monitor_flow import work_orders_task
    from serving.work_order_outbox import DELIVERED, PENDING, Outbox

    world = world_env
    settings, live = world["settings"], world["live"]
    outbox = Outbox.of(settings)

    # 1. the CMMS is down: every proposal is kept, pending, with the error
    down = work_orders_task(settings, "reports/drift/verdict.json", "monitor-run-1")
    assert down["assessed"] == len(live), down  # the training fleet failed: out of service
    made = sum(n for action, n in down["recommended"].items() if action != "run")
    assert made > FAIL_FIRST, down  # enough proposals to see some fail and some pass
    assert down["proposed"] == made and down["already_proposed"] == 0
    assert down["delivery"]["failed"] == made and down["delivery"][PENDING] == made
    rows = outbox.rows(PENDING)
    assert {r["asset_id"] for r in rows} <= set(live) and len(rows) == made
    assert all(r["attempts"] == 1 and "Connect" in r["last_error"] for r in rows)

    # 2. it is back, answering 503 at first: nothing is proposed twice, nothing is lost
    receiver = Receiver(world["port"], FAIL_FIRST)
    try:
        time.sleep(0.25)  # past the backoff (at most backoff_max_s)
        again = work_orders_task(settings, "reports/drift/verdict.json", "monitor-run-2")
        assert again["proposed"] == 0 and again["already_proposed"] == made
        assert again["delivery"]["failed"] == FAIL_FIRST
        assert again["delivery"][DELIVERED] == made - FAIL_FIRST
        for _ in range(20):
            if not outbox.counts()[PENDING]:
                break
            time.sleep(0.05)
            sent = CliRunner().invoke(app, ["work-orders", "send"])
            assert sent.exit_code in (0, 1), sent.output
        assert outbox.counts() == {PENDING: 0, DELIVERED: made, "rejected": 0}

        # 3. exactly once per id, each payload a valid proposal with its evidence
        ids = {r["id"] for r in outbox.rows()}
        assert set(receiver.accepted) == ids
        assert all(len(bodies) == 1 for bodies in receiver.accepted.values())
        assert {r["auth"] for r in receiver.requests} == {f"Bearer {TOKEN}"}
        schema = json.loads((REPO / "docs" / "work-order.schema.json").read_text())
        for key, (body,) in receiver.accepted.items():
            jsonschema.validate(body, schema)
            assert body["proposal_id"] == key and body["status"] == "proposed"
            assert body["requires_approval"] is True and body["action"] != "run"
            assert body["evidence"]["model_uri"].startswith("models:/twinops-rul-turbofan/")
            assert body["evidence"]["mlflow_run_id"]
            assert body["evidence"]["monitor_run_id"] == "monitor-run-1"  # the first proposal
        sites = {b[0]["asset_id"]: b[0]["site"] for b in receiver.accepted.values()}
        assert all(site == (f"plant-{asset}" if asset in live[:3] else None)
                   for asset, site in sites.items())

        # 4. the next monitor run proposes and posts nothing new
        posts = len(receiver.requests)
        third = work_orders_task(settings, "", "")
        assert third["proposed"] == 0 and third["delivery"]["attempted"] == 0
        assert len(receiver.requests) == posts
        listed = CliRunner().invoke(app, ["work-orders", "list", "--json"])
        assert listed.exit_code == 0, listed.output
        assert {r["id"] for r in json.loads(listed.output)} == ids
    finally:
        receiver.stop()


def test_the_monitor_flow_reports_its_work_orders(world_env):
    """The monitor flow runs the step after its drift check; its summary says what it did
    and where proposals go (nothing is proposed twice across runs)."""
    from pipelines.flows import score_flow
    from pipelines.monitor_flow import monitor_flow
    from serving.work_order_outbox import Outbox

    settings = world_env["settings"]
    score_flow(settings=settings)  # the prediction log the drift check reads
    stored = len(Outbox.of(settings).rows())
    orders = monitor_flow(settings, retrain_on_drift=False).work_orders
    assert "error" not in orders, orders
    assert orders["asset_type"] == "turbofan" and orders["assessed"] == len(world_env["live"])
    assert orders["delivery"]["cmms"] == settings.work_orders.cmms_url
    assert orders["proposed"] == len(Outbox.of(settings).rows()) - stored
    assert orders["proposed"] + orders["already_proposed"] > 0


def test_the_schema_command_prints_the_committed_schema():
    from typer.testing import CliRunner

    from pipelines.cli import app

    out = CliRunner().invoke(app, ["work-orders", "schema"])
    assert out.exit_code == 0
    assert json.loads(out.output) == json.loads(
        (Path(REPO) / "docs" / "work-order.schema.json").read_text())
