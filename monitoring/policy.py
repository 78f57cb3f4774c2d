"""The retrain decision: a pure function of a drift verdict, a policy and the clock.

    Verdict|DriftResult|dict ───┐
    error trend (realized RMSE) ┤
    RetrainPolicy ──────────────┼─► decide_retrain ─► Decision(retrain, reasons)
    now, last_retrain_at, new_rows ┘                        │
                                          pipelines/ retrain flow (or nothing)

Why pure: the decision to spend compute and put a new model through review
is the part of the loop that must be predictable and auditable. No clock
reads, no I/O, no Evidently import here — the caller passes `now` and the
facts, and every branch is unit-tested. `reasons` always explains the
outcome, for the audit trail and the CLI.

Triggers (any one suffices):
  * drift verdict: the check said drift (monitoring/verdict.py: any sensor
    changed at equal life stage, family-wise corrected) — `trigger_on_verdict`;
  * drift share: share of drifted columns >= max_drift_share (both drift
    triggers are trusted only with at least min_rows current assets — rows
    for a row-level DriftResult);
  * a critical column drifted (same trust rule);
  * coverage: more than max_unmatched_share of the current rows are in life
    stages the reference never saw (life-stage-matched reports only);
  * staleness: no retrain for max_hours_without_retrain;
  * error trend (ground truth from failure feedback, monitoring/performance.py):
    the serving version's realized RMSE in the latest bucket exceeds
    max_realized_rmse, or exceeds its first bucket by max_rmse_ratio — trusted
    only with at least min_feedback_predictions predictions of known truth.
    Why both: the absolute bound catches a model that was never good enough
    on this fleet, the ratio one catches decay of a model that was.
Blockers (any one vetoes):
  * cooldown: the last retrain was less than min_hours_between_retrains ago;
  * nothing new to learn: fewer than min_new_rows new labelled rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from features.settings import RetrainPolicy  # the policy is configuration: settings own it


@dataclass(frozen=True)
class Decision:
    retrain: bool
    reasons: list[str] = field(default_factory=list)


def _utc(ts: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _facts(drift: Any) -> dict[str, Any]:
    """Normalise a check Verdict, a DriftResult or a summary dict to the fields used here."""
    get = drift.get if isinstance(drift, Mapping) else lambda k, d=None: getattr(drift, k, d)
    columns = get("columns", {}) or {}
    drifted = get("drifted_columns", None)
    if drifted is None:
        drifted = [c for c, v in columns.items() if v.get("drifted")]
    # A stage-matched verdict's sample is its assets: min_rows counts those when given.
    n_assets = get("n_current_assets", None)
    return {
        "share": float(get("share", 0.0) or 0.0),
        "n_current": n_assets if n_assets is not None else get("n_current", None),
        "unit": "assets" if n_assets is not None else "rows",
        "drifted": list(drifted),
        "unmatched_share": float(get("unmatched_share", 0.0) or 0.0),
        "verdict": bool(get("drift", False)),
        "reason": str(get("reason", "") or ""),
    }


def _error_triggers(errors: Mapping[str, Any] | None, policy: RetrainPolicy) -> list[str]:
    """Triggers from the realized-error trend {n, rmse_first, rmse_latest, version}."""
    if not errors:
        return []
    n = int(errors.get("n", 0) or 0)
    if n < policy.min_feedback_predictions:
        return []
    latest, first = errors.get("rmse_latest"), errors.get("rmse_first")
    version = errors.get("version", "?")
    out = []
    if policy.max_realized_rmse is not None and latest is not None and (
        latest > policy.max_realized_rmse
    ):
        out.append(f"realized RMSE of v{version} {latest:.1f} > {policy.max_realized_rmse:g}")
    if policy.max_rmse_ratio is not None and latest is not None and first:
        if latest > policy.max_rmse_ratio * first:
            out.append(
                f"realized RMSE of v{version} rose {latest / first:.2f}x ({first:.1f} -> "
                f"{latest:.1f}) > {policy.max_rmse_ratio:g}x"
            )
    return out


def decide_retrain(
    drift: Any,
    policy: RetrainPolicy,
    *,
    now: datetime,
    last_retrain_at: datetime | None = None,
    new_rows: int = 0,
    errors: Mapping[str, Any] | None = None,
) -> Decision:
    """Decide whether to retrain; `reasons` says why (or why not)."""
    facts = _facts(drift)
    now = _utc(now)
    triggers: list[str] = []
    notes: list[str] = []

    n_current = facts["n_current"]
    trusted = n_current is None or n_current >= policy.min_rows
    if not trusted:
        notes.append(
            f"drift verdict not trusted: {n_current} current {facts['unit']} < min_rows "
            f"{policy.min_rows}"
        )
    else:
        if policy.trigger_on_verdict and facts["verdict"] and facts["drifted"] and (
            facts["share"] < policy.max_drift_share
        ):
            triggers.append(f"drift verdict: {', '.join(facts['drifted'])} changed at equal "
                            "life stage")
        if facts["share"] >= policy.max_drift_share and facts["drifted"]:
            cols = ", ".join(facts["drifted"])
            triggers.append(
                f"drift share {facts['share']:.2f} >= {policy.max_drift_share:.2f} ({cols})"
            )
        if policy.trigger_on_verdict and facts["verdict"] and not facts["drifted"] and (
            facts["reason"]
        ):  # no per-column test could run, e.g. the whole cohort is outside every stage
            triggers.append(f"drift verdict: {facts['reason']}")
        critical = [c for c in policy.critical_columns if c in facts["drifted"]]
        if critical:
            triggers.append(f"critical column(s) drifted: {', '.join(critical)}")
        if (
            policy.max_unmatched_share is not None
            and facts["unmatched_share"] > policy.max_unmatched_share
        ):
            triggers.append(
                f"{facts['unmatched_share']:.0%} of current rows are in life stages the "
                f"reference lacks (> {policy.max_unmatched_share:.0%})"
            )

    hours_since = None
    if last_retrain_at is not None:
        hours_since = (now - _utc(last_retrain_at)).total_seconds() / 3600.0
    if policy.max_hours_without_retrain is not None and (
        hours_since is None or hours_since >= policy.max_hours_without_retrain
    ):
        age = "never retrained" if hours_since is None else f"last retrain {hours_since:.1f} h ago"
        triggers.append(f"model stale: {age} (max {policy.max_hours_without_retrain:g} h)")

    triggers.extend(_error_triggers(errors, policy))

    if not triggers:
        return Decision(False, [*notes, "no retrain trigger: no significant drift"])

    blockers: list[str] = []
    if hours_since is not None and hours_since < policy.min_hours_between_retrains:
        blockers.append(
            f"cooldown: last retrain {hours_since:.1f} h ago "
            f"< {policy.min_hours_between_retrains:g} h"
        )
    if new_rows < policy.min_new_rows:
        blockers.append(f"only {new_rows} new labelled rows < min_new_rows {policy.min_new_rows}")
    if blockers:
        return Decision(False, [*triggers, *notes, *(f"blocked by {b}" for b in blockers)])
    return Decision(True, [*triggers, *notes])
