"""`twinops benchmark maintenance`: what following the recommendations costs, realised.

    training fleet (run to failure) ─► fit (the shipped model, as `twinops train`)
                                   └─► its lives ─► the best fixed interval (chosen here)
    test fleet (run to failure, other units: their failure times are the truth)
        every `--every` cycles of each life: the model's prediction at that reading
        ─► serving.decisions.recommend (the type's maintenance profile, its horizon)
        ─► the first plan_maintenance / stop_now is committed (parts ordered):
           maintenance at that time, unless the unit fails first
    realised cost rate = sum of costs / sum of lives run (renewal reward), per policy:
        recommendations · run to failure · best fixed interval · oracle (a planned
        maintenance at the failure time: the floor no policy reaches)

Nothing is chosen on the test units: the fixed interval is the best one on the training
fleet's lives, and the model is the one `fit` ships. Costs are the asset type's
declared `maintenance` profile (features.maintenance), downtime included.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    import numpy as np


def policy_cost(lives: np.ndarray, planned_at: np.ndarray, planned: float,
                failure: float) -> dict:
    """Realised figures of maintaining unit i at `planned_at[i]` (np.inf: never) when it
    fails at `lives[i]`: cost rate, cost per life, share of failures, mean life run."""
    import numpy as np

    fails = planned_at >= lives
    run = np.where(fails, lives, planned_at)
    cost = np.where(fails, failure, planned)
    return {"cost_rate": float(cost.sum() / run.sum()), "cost_per_life": float(cost.mean()),
            "failures": float(fails.mean()), "mean_life_run": float(run.mean())}


def best_fixed_interval(lives: np.ndarray, planned: float, failure: float) -> float:
    """The age at which maintaining every unit gives the lowest realised cost rate on
    `lives` (the training fleet's): the plant's best fixed interval."""
    import numpy as np

    grid = np.unique(np.concatenate([lives, lives - 1]))
    grid = grid[grid > 0]
    rates = [policy_cost(lives, np.full_like(lives, t), planned, failure)["cost_rate"]
             for t in grid]
    return float(grid[int(np.argmin(rates))])


def recommended_times(test, predictor, profile, horizon: float, every: int,
                      per_cycle: float) -> dict[str, float]:
    """{unit: the maintenance time (RUL unit) the recommendations commit to, inf if none}.
    One vectorised model call over every decision point of every test unit."""
    from serving.decisions import recommend

    points = test[(test["cycle"] % every) == 0].sort_values(["asset_id", "cycle"])
    rul = predictor.predict(points, horizon=horizon)["rul"].to_numpy(float)
    draws = predictor.calibration.samples(rul)
    planned: dict[str, float] = {}
    for i, (unit, cycle) in enumerate(zip(points["asset_id"].astype(str), points["cycle"],
                                          strict=True)):
        if unit in planned:
            continue  # committed: the parts are ordered
        age = float(cycle) * per_cycle
        plan = recommend(draws[i], age, profile, horizon, "u")
        if plan.action == "stop_now":
            planned[unit] = age
        elif plan.action == "plan_maintenance":
            planned[unit] = age + plan.due_in
    return planned


def run_maintenance_benchmark(n_train: int = 40, n_test: int = 40, fleet_seed: int = 7,
                              seed: int = 0, every: int | None = None,
                              max_epochs: int | None = None, settings=None) -> dict:
    """Everything but printing: the JSON-able result, on the simulated turbofan fleet."""
    from datetime import UTC, datetime

    import numpy as np

    from benchmarks.rul import _resolved_training, machine
    from features.labels import rul_labels
    from features.settings import get_settings
    from features.sources.simulator import simulate_fleet
    from features.transforms import window_features
    from training.train import fit

    settings = _resolved_training((settings or get_settings()).for_type("turbofan"), max_epochs)
    settings = settings.model_copy(update={"training": settings.training.model_copy(
        update={"seed": seed})})
    kind = settings.type
    profile = kind.maintenance
    planned, failure = profile.planned_total, profile.failure_total
    horizon = settings.horizon
    every = every or max(1, int(horizon // 3))
    readings, events = simulate_fleet(n_train, fleet_seed)
    feats = window_features(readings, kind, events)
    labels = rul_labels(readings, events)[["asset_id", "cycle", "rul"]]
    frame = feats.merge(labels, on=["asset_id", "cycle"], validate="one_to_one")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="twinops-bench-maint-") as tmp:
        result = fit(frame, settings, feature_columns=kind.feature_columns,
                     readings=readings, out_dir=Path(tmp) / "model")
    train_seconds = time.perf_counter() - t0
    test_readings, test_events = simulate_fleet(n_test, fleet_seed + 1000)
    test = window_features(test_readings, kind, test_events)
    per = kind.rul_per_cycle
    train_lives = events.groupby("asset_id")["cycle"].max().to_numpy(float) * per
    lives_by_unit = test_events.groupby("asset_id")["cycle"].max() * per
    units = [str(u) for u in lives_by_unit.index]
    lives = lives_by_unit.to_numpy(float)
    t1 = time.perf_counter()
    times = recommended_times(test, result.predictor, profile, horizon, every, per)
    decide_seconds = time.perf_counter() - t1
    tau = best_fixed_interval(train_lives, planned, failure)
    policies = {
        "recommendations": policy_cost(
            lives, np.array([times.get(u, np.inf) for u in units]), planned, failure),
        "run_to_failure": policy_cost(lives, np.full_like(lives, np.inf), planned, failure),
        "fixed_interval": {**policy_cost(lives, np.full_like(lives, tau), planned, failure),
                           "interval": tau},
        "oracle": policy_cost(lives, lives - 1e-9, planned, failure),
    }
    base = policies["run_to_failure"]["cost_rate"]
    for p in policies.values():
        p["vs_run_to_failure"] = p["cost_rate"] / base
    return {
        "policies": policies,
        "config": {"asset_type": "turbofan (simulator)", "n_train": n_train, "n_test": n_test,
                   "fleet_seed": fleet_seed, "seed": seed, "every_cycles": every,
                   "horizon": horizon, "profile": profile.model_dump(),
                   "planned_total": planned, "failure_total": failure,
                   "physics_variant": result.params.get("physics_variant"),
                   "test_life_mean": float(lives.mean()),
                   "train_life_mean": float(train_lives.mean())},
        "machine": machine(),
        "command": (f"twinops benchmark maintenance --n-train {n_train} --n-test {n_test} "
                    f"--fleet-seed {fleet_seed} --seed {seed} --every {every}"
                    + (f" --max-epochs {max_epochs}" if max_epochs else "")),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "train_seconds": train_seconds,
        "decide_seconds": decide_seconds,
    }


def table(result: dict) -> str:
    cfg = result["config"]
    lines = [f"Maintenance policies on {cfg['n_test']} simulated turbofans run to failure "
             f"(model trained on {cfg['n_train']} others; planned {cfg['planned_total']:,.0f}, "
             f"failure {cfg['failure_total']:,.0f}, lead time "
             f"{cfg['profile']['parts_lead_time']:g} cycles, decisions every "
             f"{cfg['every_cycles']} cycles)", "",
             "policy               | cost / cycle | × run-to-failure | cost / life | failures "
             "| life run", "-" * 91]
    for name, p in result["policies"].items():
        label = name + (f" ({p['interval']:g})" if "interval" in p else "")
        lines.append(f"{label:<20} | {p['cost_rate']:12,.0f} | {p['vs_run_to_failure']:16.3f} "
                     f"| {p['cost_per_life']:11,.0f} | {p['failures']:8.2f} | "
                     f"{p['mean_life_run']:8.1f}")
    return "\n".join(lines)


def command(
    n_train: Annotated[int, typer.Option(min=4, help="Training turbofans run to failure.")] = 40,
    n_test: Annotated[int, typer.Option(min=1, help="Test turbofans run to failure.")] = 40,
    fleet_seed: Annotated[int, typer.Option(help="Simulator seed (test: + 1000).")] = 7,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
    every: Annotated[int | None, typer.Option(min=1, help="Cycles between decisions; "
                                              "default a third of the horizon.")] = None,
    max_epochs: Annotated[int | None, typer.Option(help="Override (quick runs).")] = None,
    out: Annotated[Path, typer.Option(help="JSON figures.")] = Path(
        "maintenance-benchmark.json"),
) -> None:
    """Realised cost of following the maintenance recommendations, against run-to-failure,
    the best fixed interval and an oracle, on a simulated fleet (docs/benchmarks.md)."""
    result = run_maintenance_benchmark(n_train, n_test, fleet_seed, seed, every, max_epochs)
    out.write_text(json.dumps(result, indent=2))
    typer.echo(table(result))
    typer.echo(f"\nwritten: {out}")
