"""From a predicted RUL to a decision: fleet risk and maintenance recommendations.

    online features (one batch per type) ─► champion ─► RUL, interval, p_fail(horizon)
        │                                     └─► predictive RUL draws (training.conformal)
        ▼
    rank_fleet:  risk = p_fail(horizon) x criticality, ranked, paged
    recommend:   the maintenance time t >= parts lead time that minimises the expected
                 cost rate of the asset's life, under its predictive RUL distribution:

                     rate(t) = [c_planned S(t) + c_failure (1 - S(t))] / (age + E[min(RUL, t)])

                 S(t) = P(RUL > t). This is the classic age-replacement cost rate (Barlow &
                 Proschan 1965) for an asset already `age` old, with the model's predictive
                 distribution in place of a fleet lifetime distribution: the asset's
                 readings, not only its age, say how long it will last.
                 t -> infinity is run-to-failure: c_failure / (age + E[RUL]).

A recommendation never acts: it is a proposal a person turns into a work order. The
action says what to do now:

    inspect           the features are stale or missing: the prediction is not about now
    stop_now          failure before the parts can arrive is more likely than not
    plan_maintenance  maintenance pays, and the parts must be ordered within the horizon
    run               run-to-failure costs least, or the parts need not be ordered yet

Why written here and not taken from a library: the cost-rate minimisation is a few lines
of numpy over the conformal draws, and no maintained package computes it from an
empirical predictive distribution (reliability packages fit a parametric lifetime to a
fleet's failures instead).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Points of the maintenance-time grid between the lead time and the longest draw.
TIME_GRID = 160
#: Least saving against run-to-failure that makes a plan: below it the difference is
#: within the resolution of the few hundred draws the rates are computed on.
MIN_SAVING = 0.01


@dataclass
class Plan:
    """The recommendation for one asset, in its type's RUL unit."""

    action: str
    #: When to do the planned maintenance, from now (None for run / inspect).
    due_in: float | None
    #: The latest time from now at which the probability of failure before it stays below
    #: the risk tolerance (the conformal quantile), None when the features are not current.
    latest_safe_in: float | None
    #: Expected cost per unit of operating life: following the plan, running to failure,
    #: and the plant's fixed interval (None when the profile has none).
    cost_rate: float | None
    cost_rate_run_to_failure: float | None
    cost_rate_fixed_interval: float | None
    p_fail_before_parts: float | None
    reasons: list[str] = field(default_factory=list)


def cost_rate(draws: np.ndarray, age: float, t: np.ndarray, planned: float,
              failure: float) -> np.ndarray:
    """rate(t) of the module docstring for one asset: `draws` its predictive RUL draws,
    `t` maintenance times from now (np.inf = run to failure)."""
    draws = np.asarray(draws, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    survive = (draws[None, :] > t[:, None]).mean(axis=1)
    served = np.minimum(draws[None, :], t[:, None]).mean(axis=1)
    cost = planned * survive + failure * (1.0 - survive)
    life = age + served
    return np.divide(cost, life, out=np.full_like(cost, np.inf), where=life > 0)


def recommend(draws: np.ndarray, age: float, profile, horizon: float, unit: str,
              *, stale: bool = False, stop_probability: float = 0.5,
              risk_tolerance: float = 0.05) -> Plan:
    """The Plan for one asset (see the module docstring); `profile` a priced
    features.maintenance.MaintenanceProfile, `horizon` how far ahead parts are ordered."""
    draws = np.sort(np.asarray(draws, dtype=np.float64))
    lead = float(profile.parts_lead_time)
    planned, failure = profile.planned_total, profile.failure_total
    rtf = float(cost_rate(draws, age, np.array([np.inf]), planned, failure)[0])
    fixed = None
    if profile.fixed_interval is not None:
        fixed = float(cost_rate(draws, age, np.array([max(profile.fixed_interval - age, 0.0)]),
                                planned, failure)[0])
    latest_safe = float(np.quantile(draws, risk_tolerance))
    p_before_parts = float((draws <= lead).mean())
    if stale:
        return Plan("inspect", None, None, None, rtf, fixed, p_before_parts,
                    ["the features are stale: this prediction is not about the asset now; "
                     "inspect it, or fix its data feed, before acting"])
    grid = np.unique(np.concatenate([[lead], np.linspace(lead, max(lead, draws[-1]), TIME_GRID)]))
    rates = cost_rate(draws, age, grid, planned, failure)
    best = int(np.argmin(rates))
    t_best, r_best = float(grid[best]), float(rates[best])
    u, per = unit, unit.removesuffix("s")  # "in 10 cycles", "per cycle of life"
    if r_best >= rtf * (1 - MIN_SAVING):
        return Plan("run", None, latest_safe, rtf, rtf, fixed, p_before_parts, [
            f"running to failure costs least ({rtf:.4g} per {per} of life); planned "
            f"maintenance ({planned:.4g}) does not pay against a failure ({failure:.4g}) "
            "at this risk"])
    saving = 1.0 - r_best / rtf
    reasons = [f"planned maintenance in {t_best:.3g} {u} costs {r_best:.4g} per {per} of life, "
               f"{saving:.0%} less than running to failure ({rtf:.4g})"]
    if p_before_parts >= stop_probability:
        return Plan("stop_now", lead, latest_safe, r_best, rtf, fixed, p_before_parts, [
            f"failure within the parts lead time ({lead:.3g} {u}) has probability "
            f"{p_before_parts:.0%}: stop the asset and order the parts", *reasons])
    if t_best - lead <= horizon:
        if latest_safe <= 0:
            reasons.append(f"the risk of failing first is already above {risk_tolerance:.0%}")
        elif latest_safe < t_best:
            reasons.append(f"the risk of failure passes {risk_tolerance:.0%} in "
                           f"{latest_safe:.3g} {u}: the latest safe time")
        return Plan("plan_maintenance", t_best, latest_safe, r_best, rtf, fixed,
                    p_before_parts, [*reasons, f"order the parts now (lead time {lead:.3g} {u})"])
    return Plan("run", t_best, latest_safe, r_best, rtf, fixed, p_before_parts, [
        *reasons, f"the parts need ordering only in {t_best - lead:.3g} {u}: keep running "
        "and re-check"])


def rank_fleet(rows: list[dict]) -> list[dict]:
    """Rows with `risk` (None: no current prediction) and `asset_id` (the fields of
    serving.decision_schemas.RiskItem but its rank): highest risk first, assets without a
    prediction last, ties by id."""
    return sorted(rows, key=lambda r: (r["risk"] is None, -(r["risk"] or 0.0), r["asset_id"]))
