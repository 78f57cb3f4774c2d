"""Model promotion a reviewer can trust: evidence, gates, four-eyes approval, audit, rollback.

    propose(v) ─► evidence (candidate vs champion, same pinned units) ─► gates (the floor too)
        │            └► HTML report ─► state_dir/reports + MLflow artifact (candidate run)
        ├─ gates pass ─► alias `challenger`, review.status=awaiting_approval
        └─ gates fail ─► review.status=rejected (reasons on the version)
    approve(v) ─► four-eyes (reviewer != trainer) ─► MLflow moves `champion` (server enforces
                  the reviewer's permission) ─► tags + audit        ─► serving hot-swaps
    reject(v)  ─► review.status=rejected ─► tags + audit
    rollback() ─► `champion` back to the version it replaced ─► tags + audit

Every path that moves `champion` goes through `_move_champion`, which writes the
audit entry and the version tags; nothing else in the platform sets that alias.
Where MLflow runs with basic-auth, identities are the authenticated MLflow users
and the server refuses an alias move without permission (403); in the embedded
default (no auth) the local user name is recorded and marked unauthenticated.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from features.settings import Settings
from pipelines import audit
from training.identity import Identity, current_identity

STATUS = "review.status"
AWAITING, APPROVED, REJECTED, ROLLED_BACK = (
    "awaiting_approval", "approved", "rejected", "rolled_back")


class ReviewError(RuntimeError):
    """A review action that the rules do not allow (the message says which rule)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _refused(exc: Exception) -> bool:
    text = str(exc)
    return "403" in text or "Permission denied" in text or "PERMISSION_DENIED" in text


@contextlib.contextmanager
def _permission(settings: Settings, what: str):
    """Turn the tracking server's 403 into a ReviewError that says who lacks what."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except MlflowException as exc:
        if _refused(exc):
            raise ReviewError(f"MLflow refused: {current_identity(settings).name} lacks "
                              f"permission to {what} on {settings.model_name!r}") from exc
        raise


def _drop_challenger(settings: Settings, version: str) -> None:
    from training.registry import delete_alias, get_alias_version

    if get_alias_version(settings, "challenger") == str(version):
        with _permission(settings, "remove the 'challenger' alias (needs MANAGE)"):
            delete_alias(settings, "challenger")


def propose(settings: Settings, version: str, *, decide: bool = True) -> dict:
    """Build the evidence and the report, run the gates, record the outcome.

    `decide=False` only (re)builds and logs the report: used to show the
    evidence of a version that was already decided (approved, rolled back). The champion
    is never proposed again (it would become its own challenger).
    """
    from features import atomic
    from pipelines.evidence import gather
    from pipelines.gates import review_gates
    from pipelines.review_report import render_html
    from training.registry import (
        get_alias_version,
        log_artifact,
        set_alias,
        tag_version,
        version_tags,
    )

    version = str(version)
    if decide and get_alias_version(settings, "champion") == version:
        decide = False  # the champion's review stands: re-evaluating it only rebuilds the report
    ev = gather(settings, version)
    gates = review_gates(ev.candidate.metrics, ev.candidate.physics,
                         ev.champion.metrics if ev.champion else None, settings.review,
                         training_metrics=ev.candidate.training_metrics,
                         max_rmse_ratio=settings.training_settings().gate_max_rmse_ratio_to_constant)
    report = atomic.write_text(
        settings.reports_dir / f"review-v{version}.html",
        render_html(ev, gates, model_name=settings.model_name,
                    run_uri=f"runs:/{ev.candidate.run_id}"))
    log_artifact(settings, ev.candidate.run_id, report, "review")
    summary = {"version": version, "passed": gates.passed, "failures": gates.failures,
               "report": str(report), "checks": [c.__dict__ for c in gates.checks]}
    if not decide:
        return {**summary, "status": version_tags(settings, version).get(STATUS, "not proposed")}
    status = AWAITING if gates.passed else REJECTED
    tag_version(settings, version, {
        STATUS: status,
        "review.gates": "passed" if gates.passed else "failed",
        "review.gate_failures": " | ".join(gates.failures),
        "review.report": f"runs:/{ev.candidate.run_id}/review/{report.name}",
        "review.compared_with": ev.champion.version if ev.champion else "",
        "review.proposed_at": _now(),
    })
    if gates.passed:
        set_alias(settings, "challenger", version)
    else:
        _drop_challenger(settings, version)
    actor = current_identity(settings)
    audit.record(settings, action="propose", version=version,
                 outcome=status, reasons=gates.failures or ["all gates passed"],
                 actor=actor.label(), evidence=str(report),
                 champion=ev.champion.version if ev.champion else None)
    return {**summary, "status": status}


def _move_champion(settings: Settings, version: str, *, action: str, actor: Identity,
                   comment: str, tags: dict[str, str], chain: bool) -> str | None:
    """The one place that moves `champion`: alias, then the audit line, then version tags.

    `chain=True` (approvals) remembers the replaced champion on the new one as
    `review.previous_champion`, which is what a rollback returns to; a rollback
    itself leaves that chain alone, so a second rollback goes one further back.
    """
    from mlflow.exceptions import MlflowException

    from training.registry import get_alias_version, set_alias, tag_version

    previous = get_alias_version(settings, "champion")
    try:
        set_alias(settings, "champion", version)
    except MlflowException as exc:
        audit.record(settings, action=action, version=version, outcome="refused",
                     reasons=[str(exc)[:300]], actor=actor.label())
        if _refused(exc):
            raise ReviewError(f"MLflow refused: {actor.name} lacks permission to move "
                              f"'champion' on {settings.model_name!r}") from exc
        raise
    audit.record(settings, action=action, version=version, outcome="champion",
                 reasons=[comment], actor=actor.label(), previous=previous,
                 authenticated=actor.authenticated)
    if chain:
        tags = {**tags, "review.previous_champion": previous or ""}
    tag_version(settings, version, tags)
    return previous


def approve(settings: Settings, version: str, comment: str, *, demo: bool = False,
            reviewer: Identity | None = None) -> dict:
    """Approve a challenger: four-eyes, then move `champion` to it.

    `demo=True` is the embedded demo's automatic approval: it skips four-eyes and
    says so on the version and in the audit log.
    """
    from training.registry import version_tags

    version = str(version)
    actor = reviewer or current_identity(settings)
    tags = version_tags(settings, version)
    if tags.get(STATUS) != AWAITING:
        raise ReviewError(f"v{version} is not awaiting approval (status "
                          f"{tags.get(STATUS, 'not proposed')}): run `twinops review show "
                          f"{version}` to propose it")
    trainer = tags.get("trained_by", "")
    if settings.review.four_eyes and not demo and actor.name == trainer:
        audit.record(settings, action="approve", version=version, outcome="refused",
                     reasons=["four-eyes: the trainer cannot approve their own model"],
                     actor=actor.label())
        raise ReviewError(f"four-eyes: {actor.name} trained v{version} and cannot approve it")
    note = comment if not demo else f"DEMO auto-approval without human review. {comment}".strip()
    previous = _move_champion(settings, version, action="approve", actor=actor, comment=note,
                              tags={STATUS: APPROVED, "review.decided_by": actor.label(),
                                    "review.decided_at": _now(), "review.comment": note,
                                    "review.authenticated": str(actor.authenticated).lower(),
                                    "review.demo": str(demo).lower()}, chain=True)
    with contextlib.suppress(ReviewError):  # an EDIT-only reviewer cannot remove aliases
        _drop_challenger(settings, version)
    approved_by = actor.label() if not demo else f"demo auto-approval ({actor.label()})"
    return {"version": version, "champion": version, "previous": previous,
            "approved_by": approved_by, "comment": note}


def reject(settings: Settings, version: str, comment: str,
           reviewer: Identity | None = None) -> dict:
    """Reject a candidate: it loses `challenger`, keeps the reasons."""
    from training.registry import get_alias_version, tag_version

    version = str(version)
    actor = reviewer or current_identity(settings)
    if get_alias_version(settings, "champion") == version:
        raise ReviewError(f"v{version} is the champion: use `twinops review rollback`")
    with _permission(settings, "tag model versions (needs EDIT)"):
        tag_version(settings, version, {STATUS: REJECTED, "review.decided_by": actor.label(),
                                        "review.decided_at": _now(), "review.comment": comment})
    _drop_challenger(settings, version)
    audit.record(settings, action="reject", version=version, outcome=REJECTED,
                 reasons=[comment], actor=actor.label())
    return {"version": version, "status": REJECTED, "rejected_by": actor.label()}


def rollback(settings: Settings, comment: str) -> dict:
    """Move `champion` back to the approved version it replaced, in one step."""
    from training.registry import get_alias_version, tag_version, version_tags

    actor = current_identity(settings)
    current = get_alias_version(settings, "champion")
    if current is None:
        raise ReviewError("there is no champion to roll back")
    target = version_tags(settings, current).get("review.previous_champion")
    if not target:
        raise ReviewError(f"v{current} replaced no earlier champion: nothing to roll back to")
    if version_tags(settings, target).get(STATUS) not in (APPROVED,):
        raise ReviewError(f"v{target} was never approved; refusing to roll back to it")
    _move_champion(settings, target, action="rollback", actor=actor,
                   comment=comment or f"rollback from v{current}",
                   tags={"review.rollback_from": current, "review.rollback_at": _now()},
                   chain=False)
    tag_version(settings, current, {STATUS: ROLLED_BACK, "review.rolled_back_by": actor.label(),
                                    "review.rolled_back_at": _now()})
    return {"champion": target, "rolled_back": current, "by": actor.label()}


def versions(settings: Settings) -> list[dict]:
    """Every registered version with its review status and aliases (newest first)."""
    from training.registry import list_versions

    return [{"version": v.version, "status": v.tags.get(STATUS, "not proposed"),
             "aliases": list(v.aliases), "trained_by": v.tags.get("trained_by", ""),
             "created": v.created.isoformat(timespec="seconds"),
             "report": v.tags.get("review.report", "")}
            for v in reversed(list_versions(settings))]


def show(settings: Settings, version: str) -> dict:
    """Evidence for `version`: proposes it if undecided, else rebuilds the report only."""
    from training.registry import version_tags

    status = version_tags(settings, str(version)).get(STATUS)
    return propose(settings, version, decide=status in (None, AWAITING))
