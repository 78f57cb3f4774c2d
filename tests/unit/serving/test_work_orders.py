"""Work-order proposals (serving.work_orders) and their outbox (serving.work_order_outbox).

Delivery goes through httpx over a MockTransport: the real client, headers and errors, with
the CMMS's answers scripted per request.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from features.settings import WorkOrderSettings
from serving.decision_schemas import Recommendation
from serving.work_order_outbox import DELIVERED, PENDING, REJECTED, Outbox, backoff_s, deliver
from serving.work_orders import WorkOrderProposal, proposal_from, proposal_id, schema_json

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
URL = "http://cmms.test/work-requests"


def rec(asset="t-07", action="plan_maintenance", **over) -> Recommendation:
    fields = dict(
        asset_id=asset, asset_type="turbofan", rul_unit="cycles", action=action, due_in=12.0,
        due_date="2026-12-10T06:00:00+00:00", latest_safe_in=15.0,
        latest_safe_date="2026-12-12T06:00:00+00:00", cost_rate=800.0,
        cost_rate_run_to_failure=1000.0, cost_rate_fixed_interval=900.0,
        p_fail_before_parts=0.1, rul=20.0, rul_lower=12.0, rul_upper=30.0,
        reasons=["planned maintenance in 12 cycles costs 20% less"],
        model_name="twinops-rul-turbofan", model_version="3")
    return Recommendation(**{**fields, **over})


def proposal(asset="t-07", action="plan_maintenance", episode="2026-01-01T00:00:00+00:00"):
    return proposal_from(rec(asset, action), episode=episode, site="plant-a",
                         model_run_id="abc123", now=NOW)


def cfg(**over) -> WorkOrderSettings:
    return WorkOrderSettings(cmms_url=URL, backoff_base_s=60, backoff_max_s=3600, **over)


class Cmms:
    """A scripted CMMS: answers[i] for the i-th request (an int status, or an exception),
    the last one repeated; every request kept."""

    def __init__(self, *answers):
        self.answers, self.requests = list(answers), []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, BaseException):
            raise answer
        return httpx.Response(answer, json={"id": f"WR-{len(self.requests)}"} if answer < 300
                              else {"message": f"status {answer}"})

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


# ------------------------------------------------------------------ the proposal
def test_a_recommendation_becomes_a_proposal_for_a_person():
    p = proposal()
    assert p.status == "proposed" and p.requires_approval is True
    assert (p.asset_id, p.asset_type, p.site, p.action) == ("t-07", "turbofan", "plant-a",
                                                            "plan_maintenance")
    assert p.due_in == 12.0 and p.due_date == datetime(2026, 12, 10, 6, tzinfo=UTC)
    assert p.expected_costs.saving_vs_run_to_failure == pytest.approx(0.2)
    assert p.expected_costs.saving_vs_fixed_interval == pytest.approx(1 - 800 / 900)
    assert p.evidence.model_uri == "models:/twinops-rul-turbofan/3"
    assert p.evidence.mlflow_run_id == "abc123"
    assert p.reasons == rec().reasons and "t-07" in p.title and p.created_at == NOW


def test_run_never_becomes_a_proposal_and_actions_can_be_narrowed():
    assert proposal_from(rec(action="run"), episode="e") is None
    assert proposal_from(rec(action="inspect"), episode="e", actions=("stop_now",)) is None
    assert proposal_from(rec(action="inspect", due_in=None, cost_rate=None),
                         episode="e").expected_costs.plan is None


def test_the_id_is_stable_per_asset_episode_and_action():
    assert proposal().proposal_id == proposal().proposal_id
    assert proposal().proposal_id.isascii()
    others = {proposal("t-08").proposal_id, proposal(action="stop_now").proposal_id,
              proposal(episode="2026-06-01T00:00:00+00:00").proposal_id}
    assert proposal().proposal_id not in others and len(others) == 3
    assert proposal().proposal_id == proposal_id("turbofan", "t-07",
                                                 "2026-01-01T00:00:00+00:00",
                                                 "plan_maintenance")


def test_the_committed_schema_is_the_models():
    committed = json.loads((REPO / "docs" / "work-order.schema.json").read_text())
    assert committed == WorkOrderProposal.model_json_schema(mode="serialization"), (
        "docs/work-order.schema.json is stale: twinops work-orders schema > "
        "docs/work-order.schema.json")
    assert json.loads(schema_json()) == committed
    assert {"status", "requires_approval", "evidence"} <= set(committed["required"])


def test_a_payload_validates_against_the_committed_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "docs" / "work-order.schema.json").read_text())
    jsonschema.validate(json.loads(proposal().model_dump_json()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**json.loads(proposal().model_dump_json()), "status": "scheduled"},
                            schema)


# ------------------------------------------------------------------ the outbox
def test_written_then_delivered_with_the_idempotency_key(tmp_path):
    box, cmms = Outbox(tmp_path / "wo.sqlite"), Cmms(201)
    assert box.add([proposal()]) == 1
    assert box.counts()[PENDING] == 1
    done = deliver(box, cfg(), client=cmms.client(), now=1000.0)
    assert done[DELIVERED] == 1 and done[PENDING] == 0 and done["cmms"] == URL
    (sent,) = cmms.requests
    assert sent.headers["Idempotency-Key"] == proposal().proposal_id
    assert sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers
    assert json.loads(sent.content) == json.loads(proposal().model_dump_json())
    (row,) = box.rows(DELIVERED)
    assert row["attempts"] == 1 and row["cmms_status"] == 201 and "WR-1" in row["cmms_response"]
    assert deliver(box, cfg(), client=cmms.client(), now=2000.0)["attempted"] == 0


def test_5xx_and_refused_stay_pending_with_backoff_then_deliver(tmp_path):
    box = Outbox(tmp_path / "wo.sqlite")
    box.add([proposal()])
    cmms = Cmms(503, httpx.ConnectError("connection refused"), 200)
    first = deliver(box, cfg(), client=cmms.client(), now=1000.0)
    assert first["failed"] == 1 and first[PENDING] == 1
    (row,) = box.rows(PENDING)
    assert row["attempts"] == 1 and "HTTP 503" in row["last_error"]
    assert row["next_attempt_at"] == 1000.0 + 60
    assert deliver(box, cfg(), client=cmms.client(), now=1059.0)["attempted"] == 0  # backoff
    second = deliver(box, cfg(), client=cmms.client(), now=1060.0)
    assert second["failed"] == 1
    (row,) = box.rows(PENDING)
    assert "ConnectError" in row["last_error"] and row["next_attempt_at"] == 1060.0 + 120
    assert deliver(box, cfg(), client=cmms.client(), now=1180.0)[DELIVERED] == 1
    assert box.rows(DELIVERED)[0]["attempts"] == 3
    assert len({r.headers["Idempotency-Key"] for r in cmms.requests}) == 1


def test_backoff_doubles_up_to_its_cap():
    c = cfg()
    assert [backoff_s(c, n) for n in (1, 2, 3, 7, 20)] == [60, 120, 240, 3600, 3600]


def test_a_4xx_is_rejected_with_the_cmms_message_and_kept(tmp_path):
    box = Outbox(tmp_path / "wo.sqlite")
    box.add([proposal()])
    done = deliver(box, cfg(), client=Cmms(422).client(), now=1000.0)
    assert done[REJECTED] == 1 and done[PENDING] == 0
    (row,) = box.rows(REJECTED)
    assert row["cmms_status"] == 422 and "status 422" in row["last_error"]
    assert deliver(box, cfg(), client=Cmms(200).client(), now=10**9)["attempted"] == 0
    assert box.retry_rejected() == 1
    assert deliver(box, cfg(), client=Cmms(200).client(), now=1001.0)[DELIVERED] == 1


@pytest.mark.parametrize("code", [401, 408, 429])
def test_credentials_and_throttling_4xx_are_retried(tmp_path, code):
    box = Outbox(tmp_path / "wo.sqlite")
    box.add([proposal()])
    assert deliver(box, cfg(), client=Cmms(code).client(), now=1000.0)["failed"] == 1
    assert box.counts() == {PENDING: 1, DELIVERED: 0, REJECTED: 0}


def test_a_crash_after_the_write_loses_nothing(tmp_path):
    path = tmp_path / "wo.sqlite"
    Outbox(path).add([proposal()])  # the process dies here, before any POST
    crash = Cmms(RuntimeError("killed mid-POST"))  # or during one: the row stays leased
    with pytest.raises(RuntimeError):
        deliver(Outbox(path), cfg(), client=crash.client(), now=1000.0)
    assert Outbox(path).counts()[PENDING] == 1
    assert deliver(Outbox(path), cfg(), client=Cmms(200).client(), now=1001.0)["attempted"] == 0
    later = 1000.0 + cfg().timeout_s + 31  # the lease ran out
    assert deliver(Outbox(path), cfg(), client=Cmms(200).client(), now=later)[DELIVERED] == 1


def test_an_open_proposal_is_not_proposed_again(tmp_path):
    box = Outbox(tmp_path / "wo.sqlite")
    assert box.add([proposal(), proposal("t-08")]) == 2
    assert box.add([proposal()]) == 0  # the next monitor run: same asset, action, episode
    deliver(box, cfg(), client=Cmms(200).client(), now=1000.0)
    assert box.add([proposal()]) == 0  # delivered: the CMMS holds it
    assert box.add([proposal(action="stop_now")]) == 1  # more urgent: a new request
    assert box.add([proposal(episode="2026-06-01T00:00:00+00:00")]) == 1  # maintained since
    assert len(box.rows()) == 4


def test_without_a_cmms_url_proposals_are_kept_and_listed(tmp_path):
    box = Outbox(tmp_path / "wo.sqlite")
    box.add([proposal()])
    cmms = Cmms(200)
    done = deliver(box, WorkOrderSettings(), client=cmms.client())
    assert done["cmms"] is None and done[PENDING] == 1 and not cmms.requests
    assert box.rows()[0]["payload"]["proposal_id"] == proposal().proposal_id


def test_the_bearer_token_comes_from_the_named_environment_variable(tmp_path):
    box = Outbox(tmp_path / "wo.sqlite")
    box.add([proposal()])
    cmms = Cmms(200)
    missing = deliver(box, cfg(token_env="CMMS_TOKEN"), client=cmms.client(), env={})
    assert "CMMS_TOKEN" in missing["error"] and not cmms.requests and missing[PENDING] == 1
    deliver(box, cfg(token_env="CMMS_TOKEN"), client=cmms.client(), env={"CMMS_TOKEN": "s3"})
    assert cmms.requests[0].headers["Authorization"] == "Bearer s3"


def test_settings_refuse_run_as_a_proposal_action():
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        WorkOrderSettings(actions=("run",))


def test_the_episode_is_the_current_life_so_a_maintenance_starts_new_proposals(tmp_path):
    import pandas as pd

    from features import datastore
    from features.settings import get_settings
    from serving.work_orders import episodes

    settings = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")
    settings.raw_root.mkdir(parents=True)
    born = pd.Timestamp("2026-01-01", tz="UTC")
    pd.DataFrame({"asset_id": ["a", "b"], "asset_type": ["turbofan"] * 2,
                  "life_start": [born, born], "site": [None, None]}).to_parquet(
        settings.raw_root / datastore.ASSETS_FILE)
    assert episodes(settings) == {"a": born.isoformat(), "b": born.isoformat()}
    serviced = pd.Timestamp("2026-06-01", tz="UTC")
    datastore.append_events(settings, pd.DataFrame(
        {"asset_id": ["a"], "cycle": [100], "event": ["maintenance"], "timestamp": [serviced]}))
    lives = episodes(settings)
    assert lives == {"a": serviced.isoformat(), "b": born.isoformat()}
    assert (proposal("a", episode=lives["a"]).proposal_id
            != proposal("a", episode=born.isoformat()).proposal_id)
