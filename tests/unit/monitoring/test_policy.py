"""decide_retrain: every branch of the pure retrain decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from monitoring.drift import DriftResult
from monitoring.policy import Decision, RetrainPolicy, decide_retrain

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def summary(share=0.6, drifted=("s1", "s2"), n_current=500, unmatched=0.0):
    return {
        "share": share,
        "n_current": n_current,
        "columns": {c: {"drifted": True} for c in drifted},
        "unmatched_share": unmatched,
    }


def test_drift_above_threshold_triggers():
    d = decide_retrain(summary(), RetrainPolicy(), now=NOW)
    assert d == Decision(True, d.reasons) and d.retrain
    assert "drift share 0.60 >= 0.50" in d.reasons[0] and "s1, s2" in d.reasons[0]


def test_accepts_a_drift_result_object():
    res = DriftResult(drift=True, share=1.0, columns={"s1": {"drifted": True}}, n_current=100)
    assert decide_retrain(res, RetrainPolicy(), now=NOW).retrain


def test_no_drift_no_retrain():
    d = decide_retrain(summary(share=0.2, drifted=("s1",)), RetrainPolicy(), now=NOW)
    assert not d.retrain and "no retrain trigger" in d.reasons[-1]


def test_share_at_threshold_without_drifted_columns_does_not_trigger():
    d = decide_retrain(summary(share=0.0, drifted=()), RetrainPolicy(max_drift_share=0.0), now=NOW)
    assert not d.retrain


def test_too_few_rows_means_verdict_not_trusted():
    d = decide_retrain(summary(n_current=10), RetrainPolicy(min_rows=50), now=NOW)
    assert not d.retrain
    assert any("not trusted" in r for r in d.reasons)


def test_critical_column_triggers_below_share():
    policy = RetrainPolicy(critical_columns=("s9",))
    d = decide_retrain(summary(share=0.1, drifted=("s9",)), policy, now=NOW)
    assert d.retrain and "critical column(s) drifted: s9" in d.reasons[0]


def test_unseen_life_stages_trigger_when_enabled():
    s = summary(share=0.0, drifted=(), unmatched=0.4)
    assert not decide_retrain(s, RetrainPolicy(), now=NOW).retrain  # off by default
    d = decide_retrain(s, RetrainPolicy(max_unmatched_share=0.25), now=NOW)
    assert d.retrain and "life stages" in d.reasons[0]


def test_cooldown_blocks():
    policy = RetrainPolicy(min_hours_between_retrains=24)
    d = decide_retrain(summary(), policy, now=NOW, last_retrain_at=NOW - timedelta(hours=5))
    assert not d.retrain
    assert d.reasons[0].startswith("drift share") and "blocked by cooldown" in d.reasons[-1]
    ok = decide_retrain(summary(), policy, now=NOW, last_retrain_at=NOW - timedelta(hours=25))
    assert ok.retrain


def test_not_enough_new_rows_blocks():
    policy = RetrainPolicy(min_new_rows=1000)
    d = decide_retrain(summary(), policy, now=NOW, new_rows=10)
    assert not d.retrain and "blocked by only 10 new labelled rows" in d.reasons[-1]
    assert decide_retrain(summary(), policy, now=NOW, new_rows=1000).retrain


def test_staleness_triggers_without_drift():
    policy = RetrainPolicy(max_hours_without_retrain=24 * 30)
    quiet = summary(share=0.0, drifted=())
    old = NOW - timedelta(days=31)
    d = decide_retrain(quiet, policy, now=NOW, last_retrain_at=old)
    assert d.retrain and "model stale" in d.reasons[0]
    assert decide_retrain(quiet, policy, now=NOW).retrain  # never retrained
    recent = NOW - timedelta(days=3)
    assert not decide_retrain(quiet, policy, now=NOW, last_retrain_at=recent).retrain


def test_staleness_also_counts_when_verdict_untrusted():
    policy = RetrainPolicy(max_hours_without_retrain=1, min_rows=1000)
    d = decide_retrain(summary(n_current=5), policy, now=NOW)
    assert d.retrain and any("not trusted" in r for r in d.reasons)


def test_naive_and_other_timezones_are_utc_normalised():
    policy = RetrainPolicy(min_hours_between_retrains=24)
    naive_recent = (NOW - timedelta(hours=2)).replace(tzinfo=None)
    assert not decide_retrain(summary(), policy, now=NOW, last_retrain_at=naive_recent).retrain


def test_policy_validation():
    with pytest.raises(ValidationError):
        RetrainPolicy(max_drift_share=1.5)
    with pytest.raises(ValidationError):
        RetrainPolicy(unknown_knob=1)


# ---- the verdict rule and the realized-error trend ------------------------------------


def test_drift_verdict_triggers_below_the_share_threshold():
    s = {**summary(share=3 / 18, drifted=("sensor_3_mean",)), "drift": True}
    d = decide_retrain(s, RetrainPolicy(), now=NOW)
    assert d.retrain and "drift verdict: sensor_3_mean" in d.reasons[0]
    assert not decide_retrain(s, RetrainPolicy(trigger_on_verdict=False), now=NOW).retrain


def errors(n=50, first=15.0, latest=15.0):
    return {"version": "3", "n": n, "rmse_first": first, "rmse_latest": latest}


def test_error_trend_triggers_on_ratio_and_on_absolute_rmse():
    no_drift = summary(share=0.0, drifted=())
    ratio = RetrainPolicy(max_rmse_ratio=1.5)
    assert not decide_retrain(no_drift, ratio, now=NOW, errors=errors(latest=20.0)).retrain
    d = decide_retrain(no_drift, ratio, now=NOW, errors=errors(latest=25.0))
    assert d.retrain and "rose 1.67x" in d.reasons[0] and "v3" in d.reasons[0]
    absolute = RetrainPolicy(max_realized_rmse=18.0)
    assert decide_retrain(no_drift, absolute, now=NOW, errors=errors(latest=19.0)).retrain
    assert not decide_retrain(no_drift, absolute, now=NOW, errors=None).retrain


def test_error_trend_needs_enough_feedback_and_respects_cooldown():
    policy = RetrainPolicy(max_rmse_ratio=1.5, min_feedback_predictions=20)
    no_drift = summary(share=0.0, drifted=())
    assert not decide_retrain(no_drift, policy, now=NOW, errors=errors(n=5, latest=99)).retrain
    d = decide_retrain(no_drift, policy, now=NOW, errors=errors(latest=99),
                       last_retrain_at=NOW - timedelta(hours=1))
    assert not d.retrain and any("cooldown" in r for r in d.reasons)
