"""The promotion flow: propose a version, then wait for a reviewer's decision.

    promotion_flow(v) ─► review.propose (gates + report)
        │ gates failed ─► rejected, done
        ▼
    pause_flow_run(wait_for_input=ReviewDecision)   ◄── `twinops review approve|reject v`
        │                                               (authenticated, applies the decision,
        │                                                then resumes this run with applied=True)
        │                                           ◄── or the Prefect UI's resume form
        ▼                                               (decision applied here, recorded with the
    approved ─► champion moves (serving hot-swaps)       claimed reviewer, unauthenticated:
    rejected ─► challenger dropped                       refused where a tracking server
                                                         holds the identities)

Pausing needs a Prefect server (PREFECT_API_URL): with the ephemeral API no
other process could resume the run, so the flow proposes and returns
"awaiting approval" instead, and `twinops review approve` applies the decision
directly.
"""

from __future__ import annotations

import os

from prefect import flow, get_client
from prefect.flow_runs import pause_flow_run, resume_flow_run
from prefect.input import RunInput

from features.settings import Settings
from pipelines import review
from pipelines.flows import _settings
from training.identity import Identity

FLOW_NAME = "promotion"


class ReviewDecision(RunInput):
    """What a reviewer answers (CLI or Prefect UI)."""

    approve: bool
    reviewer: str = ""
    comment: str = ""
    #: True when `twinops review` already applied the decision with authenticated credentials.
    applied: bool = False


def _server_api() -> bool:
    return bool(os.environ.get("PREFECT_API_URL"))


@flow(name=FLOW_NAME, log_prints=True)
def promotion_flow(version: str, settings: Settings | None = None) -> dict:
    settings = _settings(settings)
    proposal = review.propose(settings, version)
    if not proposal["passed"]:
        print(f"v{version} rejected by the gates: {proposal['failures']}")
        return proposal
    if not _server_api():
        print(f"v{version} awaits approval: `twinops review approve {version} --comment ...`")
        return proposal
    print(f"v{version} awaits a reviewer (report {proposal['report']})")
    decision = pause_flow_run(wait_for_input=ReviewDecision, timeout=settings.review.wait_seconds,
                              key=f"review-v{version}")
    if decision.applied:
        print(f"decision for v{version} applied by {decision.reviewer}")
        return {**proposal, "decision": "approved" if decision.approve else "rejected"}
    claimed = Identity(f"{decision.reviewer or 'unknown'} via Prefect UI", authenticated=False)
    if decision.approve:
        return review.approve(settings, version, decision.comment, reviewer=claimed)
    return review.reject(settings, version, decision.comment, reviewer=claimed)


def resume_waiting_run(settings, version: str, decision: ReviewDecision) -> str | None:
    """Resume the paused promotion run of `version` of settings' asset type, if one waits
    (needs a Prefect server)."""
    if not _server_api():
        return None
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateName,
    )

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=[FLOW_NAME])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"]))),
        )
    for run in runs:
        params = run.parameters.get("settings") or {}
        kind = params.get("asset_type") if isinstance(params, dict) else None
        if str(run.parameters.get("version")) == str(version) and kind in (
                None, settings.asset_type):
            resume_flow_run(run.id, run_input=decision.model_dump())
            return str(run.id)
    return None
