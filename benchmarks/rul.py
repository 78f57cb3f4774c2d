"""`twinops benchmark rul`: the RUL model on NASA C-MAPSS, physics-informed vs data-only.

    train_FDxxx.txt ─► read_cmapss ─► window_features ─┐
                                     rul_labels ───────┴─► frame ─► (train fraction: random units)
                                                                      │ per seed
                         training.train.fit (PINN; + readings) ◄──────┤
                         training.train.fit (baseline: data_only()) ◄──────┘
                                      │ predictor (loaded back from its artifact)
    test_FDxxx.txt ─► window_features ─► last cycle per unit ─► predictor.predict
    RUL_FDxxx.txt  ─► true RUL (uncapped, as given) ──────────────► RMSE, PHM08, MAE,
                                                                    interval coverage/width
                                      ▼
                        mean/std over seeds ─► F.json + a table on stdout

Protocol (the usual one for C-MAPSS): train on the training units (validation by unit
inside `fit`: cross-fitted folds, each unit predicted out of fold by the ensemble members
that never saw it; those predictions pick the epoch and calibrate the intervals), training
target capped at `settings.rul_cap` (125), one prediction per test unit at its last
cycle, scored against RUL_FDxxx.txt as given (uncapped). Nothing here is tuned on the test
units: every choice was made on the out-of-fold validation RMSE.
`--train-fraction F` keeps a random F of the training units (the low-data regime, same test
set); `--unlabelled` also keeps the others, truncated and without labels, as in-service
assets that only the physics terms can use (see training.datamodule).

The benchmark measures the *model*, through the same code the platform runs (the window
transform, the labels, `fit`, the stored-and-reloaded predictor). It does not go through
Feast, MLflow or BentoML: that loop is tested in tests/integration/test_loop.py, and here it
would only add minutes of I/O per seed.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

MODELS = ("pinn", "baseline")
#: Per-seed metrics, in table order, with how each is printed.
METRICS = {
    "rmse": "{:.2f}",
    "score": "{:.0f}",
    "mae": "{:.2f}",
    "coverage": "{:.3f}",
    "width": "{:.1f}",
    "train_seconds": "{:.0f}",
}


def training_frame(data_dir: Path, subset: str, asset_type):
    """(window features + uncapped RUL labels of the run-to-failure training units, their
    raw readings: what the virtual assets of training.augment are built from)."""
    from features.labels import rul_labels
    from features.sources.cmapss import read_cmapss
    from features.transforms import window_features

    readings, events = read_cmapss(data_dir, subset, "train")
    feats = window_features(readings, asset_type, events)
    labels = rul_labels(readings, events)[["asset_id", "cycle", "rul"]]
    frame = feats.merge(labels, on=["asset_id", "cycle"], how="inner", validate="one_to_one")
    return frame, readings


def last_cycle_test_rows(data_dir: Path, subset: str, asset_type):
    """Features of each test unit at its last observed cycle, with the true RUL joined."""
    from features.sources.cmapss import read_cmapss, read_true_rul
    from features.transforms import latest_window_features

    readings, _ = read_cmapss(data_dir, subset, "test")
    last = latest_window_features(readings, asset_type)
    truth = read_true_rul(data_dir, subset)
    return last.merge(truth, on="asset_id", how="inner", validate="one_to_one")


def sample_units(frame, fraction: float, seed: int, unlabelled: bool = False):
    """Keep a random `fraction` of the training units (>= 4, so validation has units).

    With `unlabelled`, the other units stay in as *in-service* assets: cut at a random 30-90%
    of their life (so their failure is never seen) and with their RUL set to NaN. Only the
    physics terms can use them (training.datamodule); the fraction is still the labelled one.
    """
    import numpy as np
    import pandas as pd

    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"train fraction must be in (0, 1], got {fraction}")
    if fraction >= 1.0:
        return frame
    ids = frame["asset_id"].astype(str)
    units = np.array(sorted(ids.unique()))
    rng = np.random.default_rng(10_000 + seed)
    keep = rng.choice(units, size=max(4, round(fraction * len(units))), replace=False)
    labelled = frame[ids.isin(keep)]
    if not unlabelled:
        return labelled
    rest = frame[~ids.isin(keep)].copy()
    life = rest.groupby("asset_id")["cycle"].transform("max").to_numpy()
    cut_share = dict(zip(units, rng.uniform(0.3, 0.9, len(units)), strict=True))
    share = rest["asset_id"].astype(str).map(cut_share).to_numpy()
    rest = rest[rest["cycle"].to_numpy() <= np.maximum(1, np.round(share * life))]
    rest["rul"] = np.nan
    return pd.concat([labelled, rest], ignore_index=True)


def score_model(predictor, test, horizon: int) -> dict[str, float]:
    """Test-protocol metrics of one predictor on the last-cycle test rows."""
    from training import metrics as M

    out = predictor.predict(test, horizon=horizon)
    y = test["rul"].to_numpy(dtype=float)
    pred = out["rul"].to_numpy()
    lo, hi = out["rul_lower"].to_numpy(), out["rul_upper"].to_numpy()
    return {
        "rmse": M.rmse(y, pred),
        "score": M.phm08_score(y, pred),
        "mae": M.mae(y, pred),
        "coverage": M.interval_coverage(y, lo, hi),
        "width": M.mean_width(lo, hi),
    }


def run_seed(
    frame,
    readings,
    test,
    settings,
    seed: int,
    fraction: float,
    workdir: Path,
    unlabelled: bool = False,
) -> dict:
    """Train both models for one seed on the same units; their test metrics + fit facts."""
    from training.train import fit

    train = sample_units(frame, fraction, seed, unlabelled)
    out: dict[str, dict] = {}
    for model in MODELS:
        ts = settings.training.model_copy(update={"seed": seed})
        if model == "baseline":
            ts = ts.data_only()
        s = settings.model_copy(update={"training": ts})
        r = fit(
            train,
            s,
            feature_columns=s.type.feature_columns,
            readings=readings,
            out_dir=workdir / f"{model}-{seed}",
        )
        m = score_model(r.predictor, test, s.horizon)
        m["train_seconds"] = r.metrics["train_seconds"]
        m["val_rmse"] = r.metrics["val_rmse"]
        m["val_coverage"] = r.metrics["val_coverage"]
        m["n_unlabelled_rows"] = r.metrics["n_unlabelled_rows"]
        m["n_virtual_rows"] = r.metrics["n_virtual_rows"]
        # the feature set fit kept (training.candidates.feature_candidates) and each one's score
        m["feature_set"] = r.params["feature_set"]
        m["val_rmse_by_feature_set"] = {
            k.removeprefix("select_val_rmse_"): v
            for k, v in r.metrics.items()
            if k.startswith("select_val_rmse_")
        }
        m["physics"] = {k: v for k, v in r.physics_params.items() if isinstance(v, float)}
        out[model] = m
    return out


def summarise(per_seed: list[dict]) -> dict:
    """mean/std over seeds of every metric, per model, in the JSON layout of the issue."""

    def stats(values: list[float]) -> tuple[float, float]:
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    summary: dict[str, dict] = {}
    for model in MODELS:
        d: dict[str, float] = {}
        for key in (*METRICS, "val_rmse"):
            mean, std = stats([s[model][key] for s in per_seed])
            d[f"{key}_mean"], d[f"{key}_std"] = mean, std
        d["coverage"] = d["coverage_mean"]
        summary[model] = d
    return summary


def table(summary: dict, header: str) -> str:
    """Readable mean ± std table, one row per model."""
    cols = list(METRICS)
    rows = [["model", *cols]]
    for model in MODELS:
        d = summary[model]
        rows.append(
            [model]
            + [
                f"{METRICS[c].format(d[f'{c}_mean'])} ± {METRICS[c].format(d[f'{c}_std'])}"
                for c in cols
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols) + 1)]
    lines = [header, ""]
    for i, r in enumerate(rows):
        lines.append(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def run_benchmark(
    data_dir: Path,
    subset: str = "FD001",
    seeds: int = 5,
    train_fraction: float = 1.0,
    max_epochs: int | None = None,
    settings=None,
    unlabelled: bool = False,
) -> dict:
    """Everything but printing: the JSON-able result of the benchmark."""
    import os
    import platform

    from features.settings import get_settings

    settings = (settings or get_settings()).for_type("turbofan")  # C-MAPSS is the turbofan
    if max_epochs is not None:
        settings = settings.model_copy(
            update={"training": settings.training.model_copy(update={"max_epochs": max_epochs})}
        )
    frame, readings = training_frame(data_dir, subset, settings.type)
    test = last_cycle_test_rows(data_dir, subset, settings.type)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="twinops-bench-rul-") as tmp:
        per_seed = [
            run_seed(frame, readings, test, settings, seed, train_fraction, Path(tmp), unlabelled)
            for seed in range(seeds)
        ]
    summary = summarise(per_seed)
    return {
        **summary,
        "config": {
            "subset": subset,
            "seeds": seeds,
            "train_fraction": train_fraction,
            "unlabelled_in_service_units": unlabelled and train_fraction < 1.0,
            "n_train_units": int(sample_units(frame, train_fraction, 0)["asset_id"].nunique()),
            "n_test_units": len(test),
            "interval_level": settings.training.interval_level,
            "training": settings.training.model_dump(),
            "window": settings.window,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "per_seed": per_seed,
        "total_seconds": time.perf_counter() - t0,
    }


def command(
    data_dir: Annotated[Path, typer.Option(help="Folder with train_/test_/RUL_<subset>.txt.")],
    subset: Annotated[str, typer.Option(help="C-MAPSS subset.")] = "FD001",
    seeds: Annotated[int, typer.Option(min=1, help="Seeds 0..N-1; mean and std over them.")] = 5,
    out: Annotated[Path, typer.Option(help="Where to write the JSON figures.")] = Path(
        "rul-benchmark.json"
    ),
    train_fraction: Annotated[
        float, typer.Option(help="Train on this random fraction of the training units.")
    ] = 1.0,
    max_epochs: Annotated[int | None, typer.Option(help="Override (quick runs).")] = None,
    unlabelled: Annotated[
        bool,
        typer.Option(
            "--unlabelled/--labelled-only",
            help="With --train-fraction < 1: keep the other units as unlabelled, truncated "
            "in-service histories (physics terms only). Default: the issue's protocol, "
            "labelled units only.",
        ),
    ] = False,
) -> None:
    """RUL on C-MAPSS: physics-informed model vs data-only baseline (JSON + table)."""
    result = run_benchmark(
        data_dir, subset, seeds, train_fraction, max_epochs, unlabelled=unlabelled
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    cfg = result["config"]
    header = (
        f"RUL on C-MAPSS {subset}: {cfg['n_train_units']} training units "
        f"(fraction {train_fraction:g}"
        f"{', rest unlabelled in service' if cfg['unlabelled_in_service_units'] else ''}), "
        f"{cfg['n_test_units']} test units at their last cycle, "
        f"{seeds} seed(s); {cfg['interval_level']:.0%} intervals; mean ± std"
    )
    typer.echo(table(result, header))
    typer.echo(f"\nwritten: {out}")
