"""What the audit chain says may serve and may be approved: pure functions over its entries.

    audit.verified_history(settings)   (hash chain intact, written by the service identity)
        ├─► pending_proposal(entries, candidate)   the gates' verdict a reviewer acts on
        ├─► champion_record(entries, serving)      the approval a served version must have
        └─► rollback_target(entries, serving)      where a rollback goes

Why the chain and never tags: version tags are written by whoever may write the model
(a trainer, on the candidates model), so `review.status=approved` or
`review.previous_champion=3` on a version proves nothing. Audit entries are written only
by the service identity, linked by hashes (pipelines.audit), so a decision read from them
is one the platform made. The functions are pure, but for `load_champion`, the one way
every part of the platform that serves or acts (serving, scoring, monitoring, fleet risk)
loads the champion.
"""

from __future__ import annotations

AWAITING, REJECTED = "awaiting_approval", "rejected"
#: Outcome of an entry that moved `champion` (an approval or a rollback).
CHAMPION = "champion"


class NotApproved(RuntimeError):
    """A version the audit chain does not show approved for what is asked of it."""

    #: serving retries such a version every poll (serving.hot_swap): its approval may be
    #: recorded a moment after the alias moved
    retryable = True


def _of_candidate(entries: list[dict], candidate: str) -> list[dict]:
    return [e for e in entries if e.get("candidate_version") == str(candidate)]


def pending_proposal(entries: list[dict], candidate: str) -> dict:
    """The passing proposal of `candidate` that awaits a decision, or NotApproved saying
    why there is none (never proposed, the gates refused it, already decided)."""
    mine = [e for e in _of_candidate(entries, candidate)
            if e["action"] in ("propose", "approve", "reject")
            and not (e["action"] == "approve" and e["outcome"] != CHAMPION)]
    if not mine:
        raise NotApproved(f"candidate v{candidate} has no proposal in the audit: run "
                          f"`twinops review show {candidate}` to propose it")
    last = mine[-1]
    if last["action"] == "propose" and last["outcome"] == AWAITING:
        return last
    if last["action"] == "propose":
        raise NotApproved(f"the gates refused candidate v{candidate}: "
                          + "; ".join(last.get("reasons") or []))
    raise NotApproved(f"candidate v{candidate} was already decided ({last['action']} by "
                      f"{last['actor']} at {last['at']})")


def status(entries: list[dict], candidate: str) -> str:
    """Candidate `candidate`'s review status: "not proposed", "awaiting_approval",
    "rejected", "approved", or "rolled_back" (approved, then rolled back from)."""
    mine = [e for e in _of_candidate(entries, candidate)
            if e["action"] in ("propose", "approve", "reject") and e["outcome"] != "refused"]
    if not mine:
        return "not proposed"
    last = mine[-1]
    if last["action"] == "reject":
        return REJECTED
    if last["action"] == "propose":
        return last["outcome"]
    try:
        champion_record(entries, last["serving_version"])
    except NotApproved:
        return "rolled_back"
    return "approved"


def champion_record(entries: list[dict], serving: str, artifact_sha256: str | None = None
                    ) -> dict:
    """The entry that made serving version `serving` champion, if it still stands.

    Stands: an approval (or a rollback to it) names it, no later rollback left it, and the
    artifact hash approved is the one served. A version once approved and later only
    replaced by a newer approval still stands (an operator may move back to it with
    `review rollback`); one rolled back from does not until approved again.
    """
    serving = str(serving)
    made, left = None, None
    for i, e in enumerate(entries):
        if e.get("outcome") == CHAMPION and e.get("serving_version") == serving:
            made = i
        if e.get("action") == "rollback" and e.get("rollback_from") == serving:
            left = i
    if made is None:
        raise NotApproved(f"serving v{serving} has no approval in the audit")
    if left is not None and left > made:
        raise NotApproved(f"serving v{serving} was rolled back at {entries[left]['at']}")
    record = entries[made]
    if artifact_sha256 is not None and record.get("artifact_sha256") != artifact_sha256:
        raise NotApproved(f"serving v{serving}: artifact sha256 {artifact_sha256} is not the "
                          f"approved {record.get('artifact_sha256')}")
    return record


def load_champion(settings):
    """The champion (training.registry.LoadedModel), if the audit chain shows it approved
    with the artifact served; NotApproved otherwise, LookupError without a champion.

    Checked before the download (a refusal costs one registry read, so serving may retry it
    every poll: an approval's audit line lands just after its alias move) and after it (the
    alias may have moved meanwhile).
    """
    from pipelines import audit
    from training.registry import get_alias_version, load_by_alias

    def entries():
        try:
            return audit.verified_history(settings, mirror=False)
        except audit.AuditTampered as exc:
            raise NotApproved(f"the audit chain is broken: {exc}") from exc

    version = get_alias_version(settings, "champion")
    if version is None:
        raise LookupError(f"no champion of {settings.model_name!r}")
    chain = entries()
    champion_record(chain, version)
    loaded = load_by_alias(settings, "champion")
    if loaded.version != version:  # the alias moved during the download: read the chain again
        chain = entries()
    champion_record(chain, loaded.version, loaded.tags.get("artifact_sha256"))
    return loaded


def rollback_target(entries: list[dict], serving: str) -> str:
    """The serving version the approval of `serving` replaced (what a rollback returns to);
    each rollback goes one approval further back."""
    approvals = [e for e in entries if e["action"] == "approve" and e.get("outcome") == CHAMPION
                 and e.get("serving_version") == str(serving)]
    if not approvals:
        raise NotApproved(f"serving v{serving} has no approval in the audit")
    previous = approvals[-1].get("previous")
    if not previous:
        raise NotApproved(f"serving v{serving} replaced no earlier champion: nothing to roll "
                          "back to")
    if not any(e["action"] == "approve" and e.get("outcome") == CHAMPION
               and e.get("serving_version") == str(previous) for e in entries):
        raise NotApproved(f"serving v{previous} was never approved; refusing to roll back to it")
    return str(previous)
