"""Maintenance decisions: the cost-rate optimum, the actions, the fleet ranking."""

import numpy as np
import pytest

from features.maintenance import MaintenanceProfile
from serving.decisions import cost_rate, rank_fleet, recommend


def _uniform_draws(n=4000, high=1.0):
    return (np.arange(n) + 0.5) / n * high


def test_the_optimum_matches_the_closed_form_of_a_uniform_lifetime():
    """Lifetime U(0, 1), new asset, c_p = 1, c_f = 5: rate(T) = (1 + 4T) / (T - T^2/2),
    minimised where 4(T - T^2/2) = (1 + 4T)(1 - T), i.e. 2T^2 + T - 1 = 0: T* = 1/2,
    rate 3 / 0.375 = 8 against run-to-failure's 5 / 0.5 = 10."""
    profile = MaintenanceProfile(failure_cost=5, planned_cost=1)
    plan = recommend(_uniform_draws(), 0.0, profile, horizon=10.0, unit="h")
    assert plan.action == "plan_maintenance"
    assert plan.due_in == pytest.approx(0.5, abs=0.01)
    t = plan.due_in
    assert plan.cost_rate == pytest.approx((1 + 4 * t) / (t - t * t / 2), rel=0.001)
    assert plan.cost_rate == pytest.approx(8.0, rel=0.01)
    assert plan.cost_rate_run_to_failure == pytest.approx(5 / 0.5, rel=0.01)
    assert plan.latest_safe_in == pytest.approx(0.05, abs=0.01)


def test_a_memoryless_lifetime_never_pays_for_preventive_maintenance():
    """Constant hazard: renewing early buys nothing, so the plan is to run."""
    draws = -np.log(1 - _uniform_draws())  # exponential(1) quantiles
    plan = recommend(draws, 0.0, MaintenanceProfile(failure_cost=10, planned_cost=1), 5.0, "h")
    assert plan.action == "run"
    assert plan.cost_rate == pytest.approx(plan.cost_rate_run_to_failure)


def test_maintenance_dearer_than_failure_means_run_to_failure():
    plan = recommend(_uniform_draws(), 0.0, MaintenanceProfile(failure_cost=1, planned_cost=2),
                     10.0, "h")
    assert plan.action == "run" and plan.due_in is None
    assert "running to failure costs least" in plan.reasons[0]


def test_likely_failure_before_the_parts_arrive_stops_the_asset():
    profile = MaintenanceProfile(failure_cost=10, planned_cost=1, parts_lead_time=0.7)
    plan = recommend(_uniform_draws(), 0.0, profile, 10.0, "h")
    assert plan.action == "stop_now"
    assert plan.p_fail_before_parts == pytest.approx(0.7, abs=0.01)
    assert "lead time" in plan.reasons[0]


def test_the_lead_time_bounds_the_plan_and_a_far_plan_keeps_running():
    profile = MaintenanceProfile(failure_cost=5, planned_cost=1, parts_lead_time=0.45)
    plan = recommend(_uniform_draws(), 0.0, profile, 10.0, "h")
    assert plan.due_in >= 0.45
    far = recommend(_uniform_draws(high=100.0), 0.0, MaintenanceProfile(
        failure_cost=5, planned_cost=1), horizon=5.0, unit="cycles")
    assert far.action == "run" and far.due_in == pytest.approx(50.0, abs=1.0)
    assert "order" in far.reasons[-1]


def test_stale_features_ask_for_an_inspection_not_a_plan():
    plan = recommend(_uniform_draws(), 0.0, MaintenanceProfile(failure_cost=5, planned_cost=1),
                     10.0, "h", stale=True)
    assert plan.action == "inspect" and plan.due_in is None and "stale" in plan.reasons[0]


def test_fixed_interval_and_downtime_enter_the_cost():
    profile = MaintenanceProfile(failure_cost=5, planned_cost=1, fixed_interval=0.9,
                                 failure_downtime_h=2, downtime_cost_per_h=1)
    plan = recommend(_uniform_draws(), 0.0, profile, 10.0, "h")
    assert profile.failure_total == 7
    want = cost_rate(_uniform_draws(), 0.0, np.array([0.9]), 1.0, 7.0)[0]
    assert plan.cost_rate_fixed_interval == pytest.approx(want)
    assert plan.cost_rate < plan.cost_rate_fixed_interval


def test_fleet_ranking_puts_the_highest_weighted_risk_first_and_unknowns_last():
    def row(a, risk):
        return {"asset_id": a, "risk": risk}

    ranked = rank_fleet([row("a", 0.1), row("b", None), row("c", 0.9), row("d", 0.1)])
    assert [r["asset_id"] for r in ranked] == ["c", "a", "d", "b"]
