"""Automatic promotion gates: a pure function of the evidence and the configured rules.

    candidate training metrics ──┐
    candidate metrics + physics ─┤
    champion metrics (or none) ──┼─► review_gates ─► GateResult(passed, checks[name, ok, detail])
    ReviewSettings (twinops.yaml)┘

Rules:
- the floor (`training.gate_max_rmse_ratio_to_constant`): the held-out RMSE of training is
  at most that ratio x the RMSE of a constant-RUL predictor on the same rows. A model that
  cannot beat "every asset has the mean RUL" has learned nothing from the sensors, whatever
  its absolute RMSE looks like; both figures were computed by `fit` on assets each member
  never trained on, so re-scoring here would only repeat them;
and, each configurable under `review:` in twinops.yaml:
- not worse than the champion beyond a tolerance: RMSE <= champion x (1 + rmse_tolerance),
  PHM08 score <= champion x (1 + score_tolerance) — on the same pinned units, scored at
  random cuts of each unit's life against the uncapped RUL (training.truncation), the
  validation training chose the model on and the one that mirrors how a test unit or an
  asset in service is scored;
- interval coverage (at the same cuts) within [coverage_min, coverage_max];
- physics: RUL >= 0, health in [0, 1], damage reversals (health rising between cycles)
  at most max_damage_reversal_share, time-consistency residual at most
  max_time_consistency_residual cycles.
With no champion yet (or none this code can load), the comparison checks are skipped
and say so; the floor still applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from features.settings import ReviewSettings

FLOOR = "beats constant RUL"


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateResult:
    checks: tuple[GateCheck, ...]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]


def _not_worse(name: str, cand: float, champ: float, tolerance: float) -> GateCheck:
    limit = champ * (1 + tolerance) if champ >= 0 else champ * (1 - tolerance)
    ok = cand <= limit
    return GateCheck(name, ok, f"{cand:.3f} {'<=' if ok else '>'} {limit:.3f} "
                               f"(champion {champ:.3f} + {tolerance:.0%})")


def floor_gate(training_metrics: dict, max_ratio: float) -> GateCheck:
    """The floor: training's held-out cut validation RMSE (`val_cut_rmse`, training.truncation)
    <= max_ratio x a constant predictor's there (`val_cut_constant_rmse`). A run logged
    before the cut validation existed is judged on its all-rows `val_rmse` instead."""
    key = "val_cut" if "val_cut_rmse" in training_metrics else "val"
    rmse, base = training_metrics.get(f"{key}_rmse"), training_metrics.get(
        f"{key}_constant_rmse")
    if rmse is None or base is None or not (math.isfinite(rmse) and math.isfinite(base)):
        return GateCheck(FLOOR, False, f"the training run has no finite {key}_rmse and "
                                       f"{key}_constant_rmse: nothing to compare")
    limit = max_ratio * base
    ok = rmse <= limit
    where = "at random cuts of life" if key == "val_cut" else "all rows"
    return GateCheck(FLOOR, ok, f"held-out rmse {where} {rmse:.2f} {'<=' if ok else '>'} "
                                f"{limit:.2f} ({max_ratio:g} x constant predictor {base:.2f})")




def review_gates(candidate_metrics: dict, candidate_physics: dict,
                 champion_metrics: dict | None, rules: ReviewSettings, *,
                 training_metrics: dict, max_rmse_ratio: float) -> GateResult:
    """Every automatic gate, the floor first; `training_metrics` are the candidate run's."""
    checks: list[GateCheck] = [floor_gate(training_metrics, max_rmse_ratio)]
    if champion_metrics is None:
        checks.append(GateCheck("champion comparison", True, "no champion yet: skipped"))
    else:
        # the cut figures (training.evaluate `cut_*`) where both models have them; the
        # all-rows ones against evidence from before the cut validation
        cut = "cut_rmse" in candidate_metrics and "cut_rmse" in champion_metrics
        rmse, score = ("cut_rmse", "cut_phm08_per_unit") if cut else ("rmse", "phm08_score")
        checks.append(_not_worse("rmse vs champion", candidate_metrics[rmse],
                                 champion_metrics[rmse], rules.rmse_tolerance))
        checks.append(_not_worse("phm08 score vs champion", candidate_metrics[score],
                                 champion_metrics[score], rules.score_tolerance))
    coverage = candidate_metrics.get("cut_coverage", candidate_metrics["coverage"])
    checks.append(GateCheck(
        "interval coverage", rules.coverage_min <= coverage <= rules.coverage_max,
        f"{coverage:.3f} in [{rules.coverage_min}, {rules.coverage_max}]"))
    checks.append(GateCheck("RUL >= 0", candidate_physics["min_rul"] >= 0,
                            f"min RUL {candidate_physics['min_rul']:.2f}"))
    in_bounds = (candidate_physics["min_health"] >= 0) and (candidate_physics["max_health"] <= 1)
    checks.append(GateCheck("health in [0, 1]", in_bounds,
                            f"[{candidate_physics['min_health']:.3f}, "
                            f"{candidate_physics['max_health']:.3f}]"))
    reversal = candidate_physics["damage_reversal_share"]
    checks.append(GateCheck("monotone damage", reversal <= rules.max_damage_reversal_share,
                            f"{reversal:.1%} of steps reverse damage "
                            f"(max {rules.max_damage_reversal_share:.0%})"))
    residual = candidate_physics["time_consistency_residual"]
    checks.append(GateCheck("time consistency", residual <= rules.max_time_consistency_residual,
                            f"RMS residual {residual:.2f} cycles "
                            f"(max {rules.max_time_consistency_residual})"))
    return GateResult(tuple(checks))
