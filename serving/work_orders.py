"""A recommendation becomes a work-order proposal for a person, never an action.

    fleet_risk (one type, risk >= work_orders.min_risk, top max_assets)
        ─► recommend_assets ─► Recommendation per asset
        ─► proposal_from: action in work_orders.actions (never `run`) ─► WorkOrderProposal
        ─► serving.work_order_outbox.Outbox (written first, atomically) ─► POST to the CMMS

What twinops sends is a work *request*: `status: "proposed"`, `requires_approval: true`,
for a planner to approve in the CMMS. The payload's JSON Schema is committed as
docs/work-order.schema.json (a unit test keeps it equal to WorkOrderProposal's).

The proposal id is stable per asset, episode and action, so a re-sent proposal is the same
request on the CMMS side (it is also the `Idempotency-Key` header). The episode is the
asset's current life: it starts at its last recorded failure or maintenance, else at its
registered life start. One proposal per asset, action and episode: once a maintenance is
recorded (`twinops feedback --event maintenance`), the next life's proposals are new ones.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

#: The actions a proposal can carry: `run` is no work.
ProposedAction = Literal["inspect", "plan_maintenance", "stop_now"]


class ExpectedCosts(BaseModel):
    """Expected cost per RUL unit of the asset's life (serving.decisions.cost_rate)."""

    model_config = ConfigDict(extra="forbid")

    plan: float | None = Field(description="Following this proposal (null for inspect).")
    run_to_failure: float | None
    fixed_interval: float | None = Field(
        description="The plant's fixed maintenance interval; null where it has none.")
    saving_vs_run_to_failure: float | None = Field(
        description="1 - plan / run_to_failure (a fraction).")
    saving_vs_fixed_interval: float | None = Field(
        description="1 - plan / fixed_interval (a fraction).")


class Evidence(BaseModel):
    """Where a planner checks why: the model, its training run, the pages behind it."""

    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)

    model_name: str
    model_version: str
    model_uri: str = Field(description="The registered version: models:/<name>/<version>.")
    mlflow_run_id: str | None = Field(description="The MLflow run that trained the model.")
    fleet_page: str | None = Field(default=None, description="The newest fleet page (HTML).")
    monitor_report: str | None = Field(
        default=None, description="The drift report of the monitor run that proposed this.")
    monitor_run_id: str | None = Field(default=None, description="That monitor's MLflow run.")


class WorkOrderProposal(BaseModel):
    """A work request for a planner to approve in the CMMS: nothing is scheduled by twinops."""

    #: The schema is the payload's (mode="serialization"): every field is always sent, so
    #: every field is required there, defaults included.
    model_config = ConfigDict(extra="forbid", title="twinops work-order proposal",
                              json_schema_serialization_defaults_required=True)

    schema_version: Literal[1] = 1
    proposal_id: str = Field(description="Stable per asset, episode and action: a re-send is "
                             "the same request (also the Idempotency-Key header).")
    status: Literal["proposed"] = "proposed"
    requires_approval: Literal[True] = True
    title: str = Field(description="One line for the work request's subject.")
    asset_id: str
    asset_type: str
    site: str | None = None
    action: ProposedAction
    rul_unit: str = Field(description="Unit of due_in, latest_safe_in and the RUL fields.")
    due_in: float | None = Field(description="Planned maintenance from the last reading.")
    due_date: datetime | None = Field(description="null where the type has no time per unit.")
    latest_safe_in: float | None = Field(
        description="Where the probability of failing first passes the risk tolerance.")
    latest_safe_date: datetime | None
    rul: float
    rul_lower: float
    rul_upper: float
    p_fail_before_parts: float | None
    expected_costs: ExpectedCosts
    reasons: list[str] = Field(description="Why, in words (the recommendation's reasons).")
    evidence: Evidence
    episode: str = Field(description="Start of the asset's current life (its last failure "
                         "or maintenance, else its life start): one proposal per action in it.")
    created_at: datetime


def proposal_id(asset_type: str, asset_id: str, episode: str, action: str) -> str:
    """Same asset, episode and action → same id (ASCII: it travels in a header)."""
    key = "\x1f".join([asset_type, asset_id, episode, action])
    return "twinops-wo-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def _saving(plan: float | None, other: float | None) -> float | None:
    return None if plan is None or not other else 1.0 - plan / other


def _title(rec) -> str:
    when = (f" within {rec.due_in:.3g} {rec.rul_unit}" if rec.due_in is not None
            and rec.action == "plan_maintenance" else "")
    verb = {"inspect": "Inspect", "plan_maintenance": "Plan maintenance of",
            "stop_now": "Stop and maintain"}[rec.action]
    return f"{verb} {rec.asset_type} {rec.asset_id}{when} (twinops proposal)"


def proposal_from(rec, *, episode: str, site: str | None = None,
                  model_run_id: str | None = None, fleet_page: str | None = None,
                  monitor_report: str | None = None, monitor_run_id: str | None = None,
                  actions=("inspect", "plan_maintenance", "stop_now"),
                  now: datetime | None = None) -> WorkOrderProposal | None:
    """The proposal of one serving.decision_schemas.Recommendation; None when its action
    makes no work order (`run`, or an action not in `actions`)."""
    if rec.action == "run" or rec.action not in actions:
        return None
    return WorkOrderProposal(
        proposal_id=proposal_id(rec.asset_type, rec.asset_id, episode, rec.action),
        title=_title(rec), asset_id=rec.asset_id, asset_type=rec.asset_type, site=site,
        action=rec.action, rul_unit=rec.rul_unit, due_in=rec.due_in, due_date=rec.due_date,
        latest_safe_in=rec.latest_safe_in, latest_safe_date=rec.latest_safe_date,
        rul=rec.rul, rul_lower=rec.rul_lower, rul_upper=rec.rul_upper,
        p_fail_before_parts=rec.p_fail_before_parts,
        expected_costs=ExpectedCosts(
            plan=rec.cost_rate, run_to_failure=rec.cost_rate_run_to_failure,
            fixed_interval=rec.cost_rate_fixed_interval,
            saving_vs_run_to_failure=_saving(rec.cost_rate, rec.cost_rate_run_to_failure),
            saving_vs_fixed_interval=_saving(rec.cost_rate, rec.cost_rate_fixed_interval)),
        reasons=list(rec.reasons),
        evidence=Evidence(
            model_name=rec.model_name, model_version=rec.model_version,
            model_uri=f"models:/{rec.model_name}/{rec.model_version}",
            mlflow_run_id=model_run_id, fleet_page=fleet_page, monitor_report=monitor_report,
            monitor_run_id=monitor_run_id),
        episode=episode, created_at=now or datetime.now(UTC))


def schema_json() -> str:
    """The payload's JSON Schema as committed in docs/work-order.schema.json."""
    import json

    schema = WorkOrderProposal.model_json_schema(mode="serialization")
    return json.dumps(schema, indent=2) + "\n"


# ------------------------------------------------------------- from the fleet to proposals
def episodes(settings) -> dict[str, str]:
    """{asset_id: start of its current life, ISO}: its last failure or maintenance event
    (any type), else its registered life start."""
    import pandas as pd

    from features.datastore import load_assets, load_events

    out = {}
    assets = load_assets(settings)
    for asset, start in zip(assets["asset_id"].astype(str), assets["life_start"], strict=True):
        if pd.notna(start):
            out[asset] = pd.Timestamp(start).isoformat()
    for kind in settings.declared_types():
        events = load_events(settings.for_type(kind))
        if len(events):
            last = pd.to_datetime(events["timestamp"], utc=True).groupby(
                events["asset_id"].astype(str)).max().dropna()
            out.update({a: t.isoformat() for a, t in last.items()})
    return out


def _sites(assets) -> dict[str, str]:
    return {str(a): str(s) for a, s in zip(assets["asset_id"], assets["site"], strict=True)
            if s is not None and str(s) not in ("<NA>", "nan", "None", "")}


def _model_run_id(typed, version: str) -> str | None:
    from training.registry import list_versions

    return next((v.run_id for v in list_versions(typed) if v.version == str(version)), None)


def newest_fleet_page(settings) -> str | None:
    pages = sorted((settings.state_dir / "reports").glob("*/fleet-*.html"),
                   key=lambda p: p.name)
    return str(pages[-1]) if pages else None


def propose(settings, *, monitor_report: str | None = None, monitor_run_id: str | None = None,
            now: datetime | None = None) -> tuple[list[WorkOrderProposal], dict]:
    """Proposals for settings' asset type from its champion (no server): the at-risk
    assets (fleet_risk) → recommend_assets → proposal_from. Returns (proposals, counts)."""
    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of, profiles_of
    from serving.decision_schemas import MAX_RECOMMEND, FleetRiskRequest, RecommendRequest
    from serving.fleet import fleet_risk, local_lanes, recommend_assets

    cfg = settings.work_orders
    kind = settings.asset_type
    now = now or datetime.now(UTC)
    lanes = local_lanes(settings, [kind])
    if kind not in lanes:
        return [], {"asset_type": kind, "skipped": f"no {kind} champion serves"}
    assets = load_assets(settings)
    ranked = fleet_risk(FleetRiskRequest(asset_type=kind, page_size=cfg.max_assets),
                        lanes=lanes, assets=assets, criticality=criticality_of(settings, assets),
                        failed_at=last_failures(settings), now=now).items
    ids = [i.asset_id for i in ranked if i.risk is not None and i.risk >= cfg.min_risk]
    lives, sites = episodes(settings), _sites(assets)
    model = lanes[kind].holder.current
    evidence = {"model_run_id": _model_run_id(settings, model.version),
                "fleet_page": newest_fleet_page(settings), "monitor_report": monitor_report,
                "monitor_run_id": monitor_run_id}
    proposals, actions, errors = [], {}, 0
    for start in range(0, len(ids), MAX_RECOMMEND):
        chunk = ids[start:start + MAX_RECOMMEND]
        for rec in recommend_assets(RecommendRequest(asset_ids=chunk), lanes=lanes,
                                    type_of=lambda a: {x: kind for x in a},
                                    profiles=profiles_of(settings, chunk),
                                    now=now).recommendations:
            if not hasattr(rec, "action"):
                errors += 1
                continue
            actions[rec.action] = actions.get(rec.action, 0) + 1
            made = proposal_from(rec, episode=lives.get(rec.asset_id, "unknown"),
                                 site=sites.get(rec.asset_id), actions=cfg.actions, now=now,
                                 **evidence)
            if made is not None:
                proposals.append(made)
    return proposals, {"asset_type": kind, "assessed": len(ids), "recommended": actions,
                       "not_recommended": errors}


def propose_and_deliver(settings, *, monitor_report: str | None = None,
                        monitor_run_id: str | None = None, now: datetime | None = None,
                        client=None) -> dict:
    """The monitor's work-order step for settings' type: propose, store in the outbox
    (before any POST), deliver what is due. Counts, and the CMMS target."""
    from serving.work_order_outbox import Outbox, deliver

    proposals, counts = propose(settings, monitor_report=monitor_report,
                                monitor_run_id=monitor_run_id, now=now)
    outbox = Outbox.of(settings)
    new = outbox.add(proposals)
    return {**counts, "proposed": new, "already_proposed": len(proposals) - new,
            "delivery": deliver(outbox, settings.work_orders, client=client,
                                now=now.timestamp() if now else None)}
