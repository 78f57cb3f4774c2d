"""Outcome KPIs (monitoring.outcomes): warnings in time, missed failures, false alarms, cost."""

from __future__ import annotations

import pandas as pd
import pytest

from features.maintenance import MaintenanceProfile
from monitoring.outcomes import ended_lives, outcome_kpis

T0 = pd.Timestamp("2026-01-01", tz="UTC")
PRICED = MaintenanceProfile(failure_cost=100.0, planned_cost=20.0, failure_downtime_h=2.0,
                            downtime_cost_per_h=5.0)
HOUR = 3600.0


def at(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def events(*rows):
    return pd.DataFrame([{"asset_id": a, "timestamp": at(h), "cycle": int(h), "event": e}
                         for a, h, e in rows])


def alerts(*rows, kind="risk"):
    return pd.DataFrame([{"asset_id": a, "kind": kind, "at": at(h), "model_version": v}
                         for a, h, v in rows],
                        columns=["asset_id", "kind", "at", "model_version"])


NO_PREDICTIONS = pd.DataFrame(columns=["asset_id", "at", "model_version"])


def test_lives_end_at_failures_and_maintenances_in_time_order():
    lives = ended_lives(events(("a", 50, "failure"), ("a", 10, "maintenance"),
                               ("b", 5, "failure")))
    a = lives[lives["asset_id"] == "a"]
    assert list(a["how"]) == ["maintenance", "failure"]
    assert pd.isna(a["started"].iloc[0]) and a["started"].iloc[1] == at(10)


def test_warned_and_missed_failures_with_lead_time_per_version():
    ev = events(("a", 100, "failure"), ("b", 100, "failure"), ("c", 100, "maintenance"))
    al = alerts(("a", 80, "1"), ("a", 90, "1"), ("c", 95, "1"))
    preds = pd.DataFrame([{"asset_id": "b", "at": at(99), "model_version": "1"}])
    [row] = outcome_kpis(ev, al, preds, {a: PRICED for a in "abc"}, horizon_s=48 * HOUR,
                         seconds_per_unit=HOUR, now=at(200))
    assert row["model_version"] == "1" and row["lives_ended"] == 3
    assert (row["failures"], row["warned_failures"], row["missed_failures"]) == (2, 1, 1)
    assert row["lead_time_h_median"] == pytest.approx(20.0)  # the FIRST alert of a's life
    assert row["lead_time_median"] == pytest.approx(20.0)  # hours per RUL unit = 1
    # two failures at 100 + 2 h x 5, one maintenance at 20, against three failures
    assert row["realised_cost"] == pytest.approx(2 * 110 + 20)
    assert row["run_to_failure_cost"] == pytest.approx(3 * 110)
    assert row["false_alarms"] == 0 and row["risk_alerts"] == 3


def test_an_alert_before_the_previous_life_ended_does_not_warn_the_next_failure():
    ev = events(("a", 10, "maintenance"), ("a", 100, "failure"))
    rows = {r["model_version"]: r for r in outcome_kpis(
        ev, alerts(("a", 5, "1")), NO_PREDICTIONS, {"a": PRICED}, horizon_s=48 * HOUR,
        now=at(200))}
    # the alert belongs to the maintained life (acted on)
    assert rows["1"]["maintenances"] == 1 and rows["1"]["false_alarms"] == 0
    assert set(rows) == {"1"}  # nobody predicted the failed life: no model's outcome


def test_false_alarm_only_once_the_horizon_has_passed():
    al = alerts(("a", 0, "2"), ("b", 190, "2"))
    [row] = outcome_kpis(events(("z", 1, "failure")).iloc[:0], al, NO_PREDICTIONS, {},
                         horizon_s=48 * HOUR, now=at(200))
    assert (row["false_alarms"], row["alerts_awaiting_horizon"]) == (1, 1)
    [row] = outcome_kpis(events(("z", 1, "failure")).iloc[:0], al, NO_PREDICTIONS, {},
                         horizon_s=None, now=at(200))
    assert row["false_alarms"] == 0 and row["alerts_awaiting_horizon"] == 0  # unjudged


def test_only_risk_alerts_count_as_warnings_and_unpriced_costs_are_unknown():
    ev = events(("a", 100, "failure"))
    al = alerts(("a", 50, "1"), kind="sensor_frozen")
    preds = pd.DataFrame([{"asset_id": "a", "at": at(60), "model_version": "3"}])
    [row] = outcome_kpis(ev, al, preds, {"a": MaintenanceProfile()}, horizon_s=None,
                         now=at(200))
    assert row["model_version"] == "3" and row["missed_failures"] == 1  # it predicted
    assert row["realised_cost"] is None and row["cost_vs_run_to_failure"] is None
    assert outcome_kpis(ev, al, NO_PREDICTIONS, {}, horizon_s=None, now=at(200)) == []


def test_versions_are_kept_apart():
    ev = events(("a", 100, "failure"), ("b", 100, "failure"))
    al = alerts(("a", 90, "1"), ("b", 99, "2"))
    rows = {r["model_version"]: r for r in outcome_kpis(
        ev, al, NO_PREDICTIONS, {}, horizon_s=None, now=at(200))}
    assert rows["1"]["lead_time_h_median"] == pytest.approx(10.0)
    assert rows["2"]["lead_time_h_median"] == pytest.approx(1.0)
