"""`twinops benchmark whatif`: how close the pump's physics what-if comes to the truth.

    live pumps of --seed (features.sources.pump.simulate_pump_live: other units than the
    training fleet, each observed up to a random 30-95% of its life)
        │ their readings only ─► serving.whatif.whatif_pump: particle filter over the life,
        │                        RUL samples under the current profile and under V + --raise-v
        └ their true draws ─► features.sources.pump.live_time_to_failure: the same pump, on
                              its duty profile up to the last reading, then at exactly the
                              profile the what-if was asked about ─► the true RUL of each
    ─► per profile: median error (relative), share of truths inside the interval, failure
       mode right; and the predicted effect of the change (requested / current RUL) against
       the true effect ─► F.json + a table on stdout

Why this truth: a what-if answers "this asset, from now, at this loading". The simulator
knows the pump's real wear rates, so it can run that question exactly; the what-if only
sees the readings. Nothing is tuned here: the filter's constants are serving/whatif.py's.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer


def score_pump(readings, truth_row, *, seed: int, i: int, raise_v: float, level: float,
               n_samples: int) -> dict:
    """One live pump: the what-if's answer and the truth under both profiles."""
    import numpy as np

    from features.sources.pump import SAMPLE_PERIOD_S, SETTING_COLUMNS, live_time_to_failure
    from serving.whatif import current_profile, whatif_pump

    life = readings.sort_values("cycle").reset_index(drop=True)
    current = current_profile(life, SETTING_COLUMNS, SAMPLE_PERIOD_S)
    requested = {"V": current["V"] * (1 + raise_v)}
    start = time.perf_counter()
    answer = whatif_pump(life, requested, setting_names=SETTING_COLUMNS,
                         period_s=SAMPLE_PERIOD_S, seconds_per_unit=3600.0, horizon=4.0,
                         level=level, n_samples=n_samples)
    elapsed = time.perf_counter() - start
    from_s = (int(truth_row["cycle"]) - 1) * SAMPLE_PERIOD_S
    row = {"asset_id": str(truth_row["asset_id"]), "readings": len(life), "seconds": elapsed}
    for name in ("current", "requested"):
        outcome = answer[name]
        ttf, mode = live_time_to_failure(seed, i, from_s, outcome.profile)
        true_h = ttf / 3600.0
        row[name] = {
            "true_rul": true_h, "rul": outcome.rul, "lower": outcome.rul_lower,
            "upper": outcome.rul_upper, "true_mode": mode,
            "mode": max(outcome.failure_modes, key=outcome.failure_modes.get)
            if outcome.failure_modes else "",
            "relative_error": (outcome.rul - true_h) / true_h
            if outcome.rul is not None and np.isfinite(true_h) else None,
            "covered": bool(outcome.rul_lower is not None and outcome.rul_upper is not None
                            and outcome.rul_lower <= true_h <= outcome.rul_upper)}
    cur, req = row["current"], row["requested"]
    row["true_effect"] = req["true_rul"] / cur["true_rul"]
    row["effect"] = (req["rul"] / cur["rul"] if req["rul"] and cur["rul"] else None)
    return row


def summary(rows: list[dict]) -> dict:
    import numpy as np

    out = {}
    for name in ("current", "requested"):
        errs = [r[name]["relative_error"] for r in rows if r[name]["relative_error"] is not None]
        out[name] = {
            "median_abs_relative_error": float(np.median(np.abs(errs))) if errs else None,
            "mean_relative_error": float(np.mean(errs)) if errs else None,
            "coverage": float(np.mean([r[name]["covered"] for r in rows])),
            "mode_right": float(np.mean([r[name]["mode"] == r[name]["true_mode"]
                                         for r in rows]))}
    effects = [(r["effect"], r["true_effect"]) for r in rows if r["effect"] is not None]
    out["effect_median_abs_error"] = (float(np.median([abs(e - t) for e, t in effects]))
                                      if effects else None)
    return out


def command(
    out: Annotated[Path, typer.Option(help="Write the JSON figures here.")] = Path(
        "whatif-benchmark.json"),
    n_pumps: Annotated[int, typer.Option(min=1, help="Live pumps scored.")] = 8,
    seed: Annotated[int, typer.Option(help="Simulator seed of the live fleet.")] = 7,
    raise_v: Annotated[float, typer.Option(help="The requested profile: supply voltage "
                                           "raised by this share.")] = 0.10,
    n_samples: Annotated[int, typer.Option(min=10, help="Forward samples per profile.")] = 100,
    level: Annotated[float, typer.Option(help="Interval level.")] = 0.9,
) -> None:
    """Physics what-if on simulated live pumps vs the same pumps run at the asked loading."""
    from features.sources.pump import simulate_pump_live

    readings, truth = simulate_pump_live(n_pumps, seed)
    rows = []
    for i, t in truth.iterrows():
        mine = readings[readings["asset_id"].astype(str) == str(t["asset_id"])]
        rows.append(score_pump(mine, t, seed=seed, i=i, raise_v=raise_v, level=level,
                               n_samples=n_samples))
        typer.echo(f"{rows[-1]['asset_id']}: done in {rows[-1]['seconds']:.1f} s")
    result = {"rows": rows, "summary": summary(rows), "seed": seed, "raise_v": raise_v,
              "level": level, "n_samples": n_samples,
              "command": f"twinops benchmark whatif --n-pumps {n_pumps} --seed {seed} "
                         f"--raise-v {raise_v}",
              "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
              "cpus": os.cpu_count(), "date": datetime.now(UTC).isoformat(timespec="seconds")}
    out.write_text(json.dumps(result, indent=1, default=str))

    def h(v):
        return f"{v:6.2f}" if v is not None else "   n/a"

    typer.echo(f"{'pump':<16} {'profile':<9} {'true h':>7} {'median':>7} {'interval':>17} "
               f"{'in?':>4} {'mode right':>10}")
    for r in rows:
        for name in ("current", "requested"):
            x = r[name]
            typer.echo(f"{r['asset_id']:<16} {name:<9} {h(x['true_rul'])} {h(x['rul'])} "
                       f"[{h(x['lower'])}, {h(x['upper'])}] {'yes' if x['covered'] else 'no':>4}"
                       f" {'yes' if x['mode'] == x['true_mode'] else 'no':>10}")
    s = result["summary"]
    for name in ("current", "requested"):
        typer.echo(f"{name}: median |error| {h(s[name]['median_abs_relative_error'])} "
                   f"(relative), coverage {s[name]['coverage']:.2f} at {level:.0%}, mode right "
                   f"{s[name]['mode_right']:.2f}")
    typer.echo(f"effect of V {raise_v:+.0%} (requested / current RUL): median |error| "
               f"{h(s['effect_median_abs_error'])}")
    typer.echo(f"wrote {out}")
