"""`twinops benchmark drift`: false alarms, detection power and speed of the drift verdict.

    FD001 train (reference) vs FD001 test (current)        ─► drift must be false
    simulator: training fleet (reference) vs 20 seeded live fleets, each
        none | bias (1 noise std, 3 sensors) | regime      ─► alarms out of 20
    speed: the verdict (stage_matched_test) on 10k … 100k current rows ─► seconds
        │
        └─► F.json + a table on stdout

What is timed: only the verdict — `stage_matched_test` on frames that
already carry window features and a life stage (the part the monitor
needs to decide). Window features, the stage model and Evidently's HTML
rendering are outside it; the FD001 case reports Evidently's render time
separately, since it is what a person waits for in `monitor drift`.
Stage without a champion: the ridge RUL fitted on the reference
(monitoring/stage.py), so the benchmark needs no training run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

CMAPSS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmapss"


def _frame(readings, events, settings, source: str):
    from features.transforms import window_features
    from monitoring.sources import MonitoredFrame, with_true_rul

    frame = with_true_rul(window_features(readings, settings.type), readings, events,
                          settings.rul_cap)
    return MonitoredFrame(frame, "raw", source, readings=readings)


def _no_events():
    import pandas as pd

    from features.contract import EVENT_COLUMNS

    return pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})


def _fd001(settings, cmapss_dir: Path, out_dir: Path) -> dict[str, Any]:
    from monitoring.check import run_check
    from monitoring.sources import load_monitored

    ref = load_monitored(str(cmapss_dir / "train_FD001.txt"), settings)
    cur = load_monitored(str(cmapss_dir / "test_FD001.txt"), settings)
    verdict = run_check(settings, ref, cur, out_dir / "fd001_verdict.json", log=False)
    smallest = min(verdict.columns.items(), key=lambda kv: kv[1]["statistic"])
    return {
        "drift": verdict.drift, "share": verdict.share, "stage": verdict.stage,
        "drifted_columns": list(verdict.drifted_columns),
        "smallest_p": {"column": smallest[0], "p": smallest[1]["statistic"],
                       "threshold": smallest[1]["threshold"]},
        "verdict_seconds": verdict.verdict_seconds,
        "evidently_render_seconds": verdict.render_seconds,
        "n_reference": verdict.n_reference, "n_current": verdict.n_current,
    }


def _simulator(settings, trials: int, n_reference: int, n_current: int) -> dict[str, Any]:
    from features.sources.loader import DRIFT_PRESETS
    from features.sources.simulator import simulate_fleet, simulate_live
    from monitoring.check import drift_check

    ref = _frame(*simulate_fleet(n_reference, 7), settings, "simulator")
    out: dict[str, Any] = {}
    for scenario in ("none", "bias", "regime"):
        alarms, seconds = 0, []
        for trial in range(trials):
            readings, _ = simulate_live(n_current, 5000 + trial,
                                            drift=DRIFT_PRESETS.get(scenario))
            cur = _frame(readings, _no_events(), settings, f"live-{scenario}-{trial}")
            verdict, _, _ = drift_check(ref, cur, settings.type, alpha=settings.monitoring.alpha,
                                        min_shift=settings.monitoring.min_shift)
            alarms += verdict.drift
            seconds.append(verdict.verdict_seconds)
        out[scenario] = {"alarms": alarms, "trials": trials,
                         "median_verdict_seconds": sorted(seconds)[len(seconds) // 2]}
    return out


def _speed(settings, sizes: list[int]) -> list[dict[str, Any]]:
    """Verdict time on N current rows (window features of simulated live fleets)."""
    import pandas as pd

    from features.sources.simulator import simulate_fleet, simulate_live
    from monitoring.check import add_life_stage, monitored_columns
    from monitoring.verdict import stage_matched_test

    ref = _frame(*simulate_fleet(100, 7), settings, "simulator")
    readings, _ = simulate_live(800, 11, life_fraction=(0.5, 0.95))
    pool = _frame(readings, _no_events(), settings, "live")
    rows = []
    for n in sizes:
        reps = -(-n // len(pool.features))
        big = pd.concat([pool.features.assign(asset_id=pool.features["asset_id"] + f"-{k}")
                         for k in range(reps)], ignore_index=True).iloc[:n]
        cur = type(pool)(big, "raw", f"{n} rows")
        columns = monitored_columns(ref.features, big, settings.type)
        r, c, _ = add_life_stage(ref, cur, columns, None)
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            stage_matched_test(r, c, columns, "life_stage", alpha=settings.monitoring.alpha)
            best = min(best, time.perf_counter() - started)
        rows.append({"current_rows": n, "reference_rows": len(r), "seconds": best,
                     "seconds_per_10k": best * 10_000 / n})
    return rows


def command(
    out: Annotated[Path, typer.Option(help="Where to write the JSON figures.")],
    trials: Annotated[int, typer.Option(help="Seeded simulator trials per scenario.")] = 20,
    cmapss_dir: Annotated[Path, typer.Option(help="Has train/test_FD001.txt.")] = CMAPSS_DIR,
) -> None:
    """False alarms (FD001 test vs train), detection power (simulator), verdict speed."""
    from features.settings import get_settings

    settings = get_settings()
    out.parent.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {"machine": {"cpus": os.cpu_count(),
                                           "affinity": len(os.sched_getaffinity(0))}}
    if (cmapss_dir / "train_FD001.txt").exists():
        figures["fd001_test_vs_train"] = _fd001(settings, cmapss_dir, out.parent)
    figures["simulator"] = _simulator(settings, trials, n_reference=40, n_current=20)
    figures["speed"] = _speed(settings, [10_000, 30_000, 100_000])
    out.write_text(json.dumps(figures, indent=1, default=str))

    lines = ["", f"{'check':44s} {'result':>24s}"]
    if "fd001_test_vs_train" in figures:
        f = figures["fd001_test_vs_train"]
        lines.append(f"{'FD001 test vs train: drift':44s} {str(f['drift']):>24s}")
        lines.append(f"{'  smallest p (' + f['smallest_p']['column'] + ')':44s} "
                     f"{f['smallest_p']['p']:>12.4g} vs {f['smallest_p']['threshold']:.2g}")
        lines.append(f"{'  Evidently HTML render (s)':44s} {f['evidently_render_seconds']:>24.2f}")
    for scenario, s in figures["simulator"].items():
        lines.append(f"{'simulator ' + scenario + ': alarms':44s} "
                     f"{s['alarms']:>21d}/{s['trials']:<2d}")
    for s in figures["speed"]:
        lines.append(f"{'verdict on ' + str(s['current_rows']) + ' rows (s)':44s} "
                     f"{s['seconds']:>24.4f}")
    typer.echo("\n".join(lines))
    typer.echo(f"\nwrote {out}")
