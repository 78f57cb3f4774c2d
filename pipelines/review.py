"""Model promotion a reviewer can trust: evidence, gates, four-eyes approval, audit, rollback.

    trainer: fit ─► candidates model vN (trainers may write it)
    propose(vN) ─► evidence (candidate vs champion, same pinned units) ─► gates (the floor too)
        │           └► HTML report ─► a run of the reviews experiment (service-owned)
        ├─ audit: propose (gates, report SHA-256, artifact SHA-256, the run's recorded user)
        └─ gates pass ─► alias `challenger` on the candidates model
    approve(vN, reviewer) ─► reviewer verified, holds the role, is not the trainer; the
        audit's pending proposal of vN passed; report and artifact hashes unchanged
        ─► copy vN into the serving model as vM ─► `champion` = vM ─► audit: approve
    reject(vN)  ─► audit: reject ─► challenger dropped
    rollback()  ─► `champion` back to the version the audit says the current one replaced

Who runs this: the service identity, the only one that may write the serving model, the
reviews experiment and the audit (docs/review.md#identities). With `review.governor_url`
set, every public function here sends the request to `twinops govern` (pipelines.governor),
which holds that identity and verifies the caller's own MLflow credentials; unset (the
embedded default), it runs in this process. Decisions are read only from the audit chain
(pipelines.approvals), never from tags: tags on a candidate are the trainer's to edit.
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import UTC, datetime
from pathlib import Path

from features.settings import Settings
from pipelines import approvals, audit
from training.identity import Identity, current_identity

STATUS = "review.status"
AWAITING, APPROVED, REJECTED, ROLLED_BACK = (
    approvals.AWAITING, "approved", approvals.REJECTED, "rolled_back")


class ReviewError(RuntimeError):
    """A review action that the rules do not allow (the message says which rule)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def governed(settings: Settings) -> bool:
    """A tracking server holds the identities: approvals need an authenticated reviewer
    with the reviewer role. The embedded store (one local user) has no roles."""
    return settings.tracking_uri.startswith(("http://", "https://"))


def _refused(exc: Exception) -> bool:
    text = str(exc)
    return "403" in text or "Permission denied" in text or "PERMISSION_DENIED" in text


@contextlib.contextmanager
def _rules():
    """The chain's verdicts and the server's 403 as ReviewErrors that say which rule."""
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (approvals.NotApproved, audit.AuditTampered) as exc:
        raise ReviewError(str(exc)) from exc
    except MlflowException as exc:
        if _refused(exc):
            raise ReviewError(f"MLflow refused ({exc.message[:200]}): review decisions are "
                              "made by the service identity (`twinops govern`, "
                              "docs/review.md#identities)") from exc
        raise


def _remote(settings: Settings, action: str, **body) -> dict | None:
    """The governor's answer when one is configured (None: act in this process)."""
    if not settings.review.governor_url:
        return None
    from pipelines.governor import call

    return call(settings, action, body)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _drop_challenger(settings: Settings, version: str) -> None:
    from training.registry import delete_alias, get_alias_version

    cand = settings.candidates_model_name
    if get_alias_version(settings, "challenger", model=cand) == str(version):
        delete_alias(settings, "challenger", model=cand)


def propose(settings: Settings, version: str, *, decide: bool = True,
            requester: Identity | None = None) -> dict:
    """Build the evidence and the report, run the gates, record the outcome in the audit.

    `decide=False` only (re)builds and logs the report: used to show the evidence of a
    candidate that was already decided. `requester`: who asked (the governor's caller).
    """
    if (answer := _remote(settings, "propose", version=str(version), decide=decide)):
        return answer
    with _rules():
        return _propose(settings, str(version), decide, requester)


def _propose(settings: Settings, version: str, decide: bool,
             requester: Identity | None) -> dict:
    from features import atomic
    from pipelines.evidence import gather
    from pipelines.gates import review_gates
    from pipelines.review_report import render_html, version_description
    from training.registry import (
        describe_version,
        log_run,
        set_alias,
        tag_version,
        version_run_user,
    )

    cand = settings.candidates_model_name
    ev = gather(settings, version)
    gates = review_gates(ev.candidate.metrics, ev.candidate.physics,
                         ev.champion.metrics if ev.champion else None, settings.review,
                         training_metrics=ev.candidate.training_metrics,
                         max_rmse_ratio=settings.training_settings().gate_max_rmse_ratio_to_constant)
    report = atomic.write_text(
        settings.reports_dir / f"review-v{version}.html",
        render_html(ev, gates, model_name=cand, run_uri=f"runs:/{ev.candidate.run_id}"))
    # the report lives in a run only the service identity may write: a trainer cannot
    # re-upload it, and its SHA-256 in the audit shows any copy that differs
    review_run = log_run(settings, settings.reviews_experiment_name, f"review v{version}",
                         tags={"candidate_model": cand, "candidate_version": version,
                               "candidate_run": ev.candidate.run_id},
                         artifacts={"review": [report]})
    report_uri = f"runs:/{review_run}/review/{report.name}"
    summary = {"version": version, "passed": gates.passed, "failures": gates.failures,
               "report": str(report), "report_uri": report_uri,
               "checks": [c.__dict__ for c in gates.checks]}
    if decide and _decided(settings, version):
        decide = False  # a decided candidate's review stands: this only rebuilds its report
    if not decide:
        return {**summary, "status": _status(settings, version)}
    status = AWAITING if gates.passed else REJECTED
    trainer = version_run_user(settings, version, model=cand)
    audit.record(settings, action="propose", version=version, candidate_version=version,
                 outcome=status, reasons=gates.failures or ["all gates passed"],
                 actor=current_identity(settings).label(), trainer=trainer,
                 requested_by=(requester or current_identity(settings)).label(),
                 report_uri=report_uri, report_sha256=_sha256(report),
                 artifact_sha256=ev.candidate.tags.get("artifact_sha256", ""),
                 champion=ev.champion.version if ev.champion else None,
                 checks=[[c.name, c.passed] for c in gates.checks])
    # what the candidate's page shows (informational: the audit is what decides)
    tag_version(settings, version, {STATUS: status, "review.report": report_uri,
                                    "review.gate_failures": " | ".join(gates.failures),
                                    "review.proposed_at": _now()}, model=cand)
    describe_version(settings, version,
                     version_description(ev, gates, _ui_link(settings, review_run, report)),
                     model=cand)
    if gates.passed:
        set_alias(settings, "challenger", version, model=cand)
    else:
        _drop_challenger(settings, version)
    return {**summary, "status": status}


def _ui_link(settings: Settings, run_id: str, report) -> str:
    """The report as a link of the MLflow UI (relative: it opens from the version's page on
    whatever host serves the UI), with its runs:/ URI."""
    from training.registry import _client

    exp = _client(settings).get_run(run_id).info.experiment_id
    path = f"review/{report.name}"
    return (f"[{report.name}](#/experiments/{exp}/runs/{run_id}/artifacts/{path}) "
            f"(`runs:/{run_id}/{path}`)")


def _decided(settings: Settings, version: str) -> bool:
    """True once the audit holds an approval or rejection of candidate `version`."""
    return any(e.get("candidate_version") == version and e["action"] in ("approve", "reject")
               and e["outcome"] in (approvals.CHAMPION, REJECTED)
               for e in audit.verified_history(settings))


def _status(settings: Settings, version: str) -> str:
    """Candidate `version`'s review status as the audit records it."""
    return approvals.status(audit.verified_history(settings), version)


def _check_reviewer(settings: Settings, actor: Identity, proposal: dict, version: str,
                    demo: bool) -> None:
    """The reviewer rules: authenticated and holding the role where a server holds the
    identities; never the trainer the server recorded on the candidate's run."""
    if governed(settings) and not demo:
        from pipelines.access import reviewers

        if not actor.authenticated:
            raise ReviewError(f"{actor.label()} is not authenticated: decide with "
                              "`twinops review approve|reject` and your MLflow credentials")
        if actor.name not in reviewers(settings):
            raise ReviewError(f"{actor.name} does not hold the reviewer role for "
                              f"{settings.model_name!r} (`twinops access show`)")
    if settings.review.four_eyes and not demo and actor.name == proposal.get("trainer"):
        audit.record(settings, action="approve", version=version, candidate_version=version,
                     outcome="refused", actor=actor.label(),
                     reasons=["four-eyes: the trainer cannot approve their own model"])
        raise ReviewError(f"four-eyes: {actor.name} trained v{version} and cannot approve it")


def _verified_report(settings: Settings, proposal: dict, version: str, dst: str) -> Path:
    """The report `proposal` recorded, downloaded into `dst`, if it still hashes to the
    SHA-256 the audit holds; ReviewError otherwise."""
    import mlflow

    from training.registry import _client

    _client(settings)  # points mlflow.artifacts at this tracking server
    got = Path(mlflow.artifacts.download_artifacts(proposal["report_uri"], dst_path=dst))
    if _sha256(got) != proposal["report_sha256"]:
        raise ReviewError(f"the review report of v{version} at {proposal['report_uri']} is not "
                          "the one the gates produced (SHA-256 differs): do not act on it; "
                          f"`twinops review show {version}` after a new proposal")
    return got


def _check_unchanged(settings: Settings, proposal: dict, version: str) -> None:
    """The report and the artifact a reviewer approves are the ones the gates saw."""
    import tempfile

    from training.registry import version_tags

    with tempfile.TemporaryDirectory() as tmp:
        _verified_report(settings, proposal, version, tmp)
    tag = version_tags(settings, version, model=settings.candidates_model_name)
    if tag.get("artifact_sha256") != proposal["artifact_sha256"]:
        raise ReviewError(f"candidate v{version}'s artifact changed after the gates ran")


def approve(settings: Settings, version: str, comment: str, *, demo: bool = False,
            reviewer: Identity | None = None) -> dict:
    """Approve a passing candidate: copy it into the serving model, move `champion` to it.

    `demo=True` is the embedded demo's automatic approval: it skips the reviewer rules and
    says so on the version and in the audit log.
    """
    if (answer := _remote(settings, "approve", version=str(version), comment=comment)):
        return answer
    with _rules():
        return _approve(settings, str(version), comment, demo,
                        reviewer or current_identity(settings))


def _approve(settings: Settings, version: str, comment: str, demo: bool,
             actor: Identity) -> dict:
    if demo and governed(settings):
        raise ReviewError("a demo auto-approval is refused where a tracking server holds "
                          "the identities")
    proposal = approvals.pending_proposal(audit.verified_history(settings), version)
    _check_reviewer(settings, actor, proposal, version, demo)
    _check_unchanged(settings, proposal, version)
    note = comment if not demo else f"DEMO auto-approval without human review. {comment}".strip()
    result = install_champion(settings, version, actor=actor, note=note, demo=demo,
                              artifact_sha256=proposal["artifact_sha256"],
                              report_uri=proposal["report_uri"],
                              report_sha256=proposal["report_sha256"])
    _drop_challenger(settings, version)
    approved_by = actor.label() if not demo else f"demo auto-approval ({actor.label()})"
    return {**result, "approved_by": approved_by}


def install_champion(settings: Settings, version: str, *, actor: Identity, note: str,
                     demo: bool, artifact_sha256: str, report_uri: str = "",
                     report_sha256: str = "") -> dict:
    """The step an approval ends with, once its rules passed: copy candidate `version` into
    the serving model, move `champion` to the copy, record the approval in the audit.

    Only `_approve` calls it in the platform; test fixtures call it to serve a model
    without a review (recorded as a demo approval by `actor`, so the audit says so).
    """
    from training.registry import copy_version, get_alias_version, set_alias, tag_version

    previous = get_alias_version(settings, "champion")
    serving = copy_version(settings, version, source=settings.candidates_model_name)
    tag_version(settings, serving, {"candidate_version": version, STATUS: APPROVED,
                                    "review.decided_by": actor.label(),
                                    "review.decided_at": _now(), "review.comment": note,
                                    "review.report": report_uri,
                                    "review.demo": str(demo).lower()})
    # alias, then the audit line: a crash between them leaves a champion the service
    # refuses (no approval yet) and keeps the old one serving; approving again completes it
    set_alias(settings, "champion", serving)
    audit.record(settings, action="approve", version=version, candidate_version=version,
                 serving_version=serving, outcome=approvals.CHAMPION, reasons=[note],
                 actor=actor.label(), previous=previous, authenticated=actor.authenticated,
                 demo=demo, artifact_sha256=artifact_sha256, report_sha256=report_sha256)
    tag_version(settings, version, {STATUS: APPROVED, "review.decided_by": actor.label(),
                                    "review.serving_version": serving},
                model=settings.candidates_model_name)
    return {"version": version, "champion": serving, "previous": previous, "comment": note}


def reject(settings: Settings, version: str, comment: str,
           reviewer: Identity | None = None) -> dict:
    """Reject a candidate: it loses `challenger`; the audit keeps the reasons."""
    if (answer := _remote(settings, "reject", version=str(version), comment=comment)):
        return answer
    with _rules():
        return _reject(settings, str(version), comment, reviewer or current_identity(settings))


def _reject(settings: Settings, version: str, comment: str, actor: Identity) -> dict:
    from training.registry import tag_version

    proposal = approvals.pending_proposal(audit.verified_history(settings), version)
    if governed(settings):
        _check_reviewer(settings, actor, {**proposal, "trainer": None}, version, demo=False)
    audit.record(settings, action="reject", version=version, candidate_version=version,
                 outcome=REJECTED, reasons=[comment], actor=actor.label())
    tag_version(settings, version, {STATUS: REJECTED, "review.decided_by": actor.label(),
                                    "review.comment": comment},
                model=settings.candidates_model_name)
    _drop_challenger(settings, version)
    return {"version": version, "status": REJECTED, "rejected_by": actor.label()}


def rollback(settings: Settings, comment: str, reviewer: Identity | None = None) -> dict:
    """Move `champion` back to the approved version the current one replaced, in one step."""
    if (answer := _remote(settings, "rollback", comment=comment)):
        return answer
    with _rules():
        return _rollback(settings, comment, reviewer or current_identity(settings))


def _rollback(settings: Settings, comment: str, actor: Identity) -> dict:
    from training.registry import get_alias_version, set_alias, tag_version, version_tags

    if governed(settings):
        _check_reviewer(settings, actor, {"trainer": None}, "", demo=False)
    current = get_alias_version(settings, "champion")
    if current is None:
        raise ReviewError("there is no champion to roll back")
    entries = audit.verified_history(settings)
    target = approvals.rollback_target(entries, current)
    record = approvals.champion_record(entries, target)
    set_alias(settings, "champion", target)
    audit.record(settings, action="rollback", version=record.get("candidate_version"),
                 candidate_version=record.get("candidate_version"), serving_version=target,
                 rollback_from=current, outcome=approvals.CHAMPION,
                 reasons=[comment or f"rollback from v{current}"], actor=actor.label(),
                 artifact_sha256=version_tags(settings, target).get("artifact_sha256"))
    tag_version(settings, current, {STATUS: ROLLED_BACK, "review.rolled_back_by": actor.label(),
                                    "review.rolled_back_at": _now()})
    return {"champion": target, "rolled_back": current, "by": actor.label()}


def versions(settings: Settings) -> list[dict]:
    """Every candidate version with its review status (from the audit) and aliases, and the
    serving version an approval made of it (newest first)."""
    from training.registry import get_alias_version, list_versions

    entries = audit.history(settings)
    champion = get_alias_version(settings, "champion")
    serving_of = {e["candidate_version"]: e["serving_version"] for e in entries
                  if e["action"] == "approve" and e["outcome"] == approvals.CHAMPION}
    rows = []
    for v in reversed(list_versions(settings, model=settings.candidates_model_name)):
        trainer = next((e["trainer"] for e in entries if e.get("candidate_version") == v.version
                        and e.get("trainer")), v.tags.get("trained_by", ""))
        serving = serving_of.get(v.version)
        aliases = list(v.aliases) + (["champion"] if serving and serving == champion else [])
        rows.append({"version": v.version, "status": approvals.status(entries, v.version),
                     "aliases": aliases, "serving_version": serving or "", "trained_by": trainer,
                     "created": v.created.isoformat(timespec="seconds"),
                     "report": v.tags.get("review.report", "")})
    return rows


def show(settings: Settings, version: str) -> dict:
    """Evidence for candidate `version`: proposes it if never proposed; otherwise the
    recorded report, downloaded and checked against the SHA-256 the audit holds (a
    reviewer needs only read access for this)."""
    version = str(version)
    with _rules():
        proposals = [e for e in audit.verified_history(settings)
                     if e.get("candidate_version") == version and e["action"] == "propose"]
    if not proposals:
        return propose(settings, version)
    return _recorded_report(settings, proposals[-1], version)


def _recorded_report(settings: Settings, proposal: dict, version: str) -> dict:
    import shutil
    import tempfile

    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    local = settings.reports_dir / f"review-v{version}.html"
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(_verified_report(settings, proposal, version, tmp), local)
    status = _status(settings, version)
    return {"version": version, "status": status,
            "passed": proposal["outcome"] == AWAITING or status == APPROVED,
            "failures": [] if proposal["outcome"] == AWAITING else proposal.get("reasons", []),
            "report": str(local), "report_uri": proposal["report_uri"],
            "report_sha256": proposal["report_sha256"], "checks": proposal.get("checks", [])}
