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

Four rows per fleet: `pinn` (physics on), `baseline` (off), `shipped`, the one of the two
with the lower cut validation RMSE (training.truncation), which is what `fit` ships with
training.physics "auto", and `constant`: the training rows' mean capped RUL for every test
unit, the floor gate's comparator (a model that does not beat it has learnt nothing).
Beside the test figures: that validation RMSE, the gap test - val, coverage per true-RUL
band and the share of test units outside their interval ("missed").
`--fleet simulator:modes=2,regimes=6,...` runs the protocol on a simulated fleet instead of
the C-MAPSS files (benchmarks.simulated_fleet).

`--asset-type pump`: the same models on the ProgPy pump (features/sources/pump.py), RUL in hours.

    simulate_pump_fleet(n_train, fleet_seed) ─► window_features + rul_labels (hours) ─► frame
                                                  │ per seed: fit PINN, fit baseline
    simulate_pump_live(n_test, fleet_seed) ─► latest_window_features ─► predictor.predict
                                          └─► truth: RUL (h) at the last reading ─► RMSE, MAE,
                                                                  interval coverage/width
    naive: mean life of the training pumps - the test pump's age (h), clipped at 0

Both fleets are simulated once (and cached in `--cache-dir`) and are the same for every seed:
the seed changes the training only, so the std over seeds is training noise, not fleet
sampling. The test pumps are other units than the training pumps (ProgPy seed + 1000), each
cut at a random 30-95% of its life. The PHM08 score is left out: its time constants (13 and
10) are C-MAPSS cycles, and on RULs of a few hours it is a near-linear rescaling of the error.
"""

from __future__ import annotations

import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

#: pinn (physics on), baseline (off), shipped: of the two, the one with the lower cut
#: validation RMSE, which is what `fit` with training.physics "auto" ships (same seed,
#: same folds, deterministic runs: the winner of both candidate sets is the winner of one),
#: and constant: the training mean capped RUL (benchmarks.rul.score_constant).
MODELS = ("pinn", "baseline", "shipped", "constant")
#: Per-seed metrics, in table order, with how each is printed.
METRICS = {
    "rmse": "{:.2f}",
    "score": "{:.0f}",
    "mae": "{:.2f}",
    "coverage": "{:.3f}",
    "width": "{:.1f}",
    "units_missed": "{:.2f}",
    "val_cut_rmse": "{:.2f}",
    "rmse_gap": "{:+.2f}",
    "train_seconds": "{:.0f}",
}
LABELS = {"val_cut_rmse": "val rmse (cuts)", "rmse_gap": "test - val",
          "units_missed": "missed", "train_seconds": "train s"}
#: The pump benchmark (hours): also a naive predictor, and no PHM08 score.
PUMP_MODELS = ("pinn", "baseline", "shipped", "constant", "naive")
PUMP_METRICS = {k: v for k, v in METRICS.items() if k != "score"} | {"width": "{:.2f}"}
PUMP_LABELS = {**LABELS, "rmse": "rmse h", "mae": "mae h", "width": "width h"}
#: Coverage per true-RUL band, printed below the table (training.truncation.coverage_bands).
BAND_NOTE = ("constant = the training rows' mean capped RUL for every unit (the floor "
             "gate's comparator): no interval (n/a). "
             "Coverage by true-RUL band (test, mean over seeds) and 'missed' = share of test "
             "units outside their interval; val rmse (cuts) = out-of-fold RMSE at random cuts "
             "of 30-95% of each training unit's life (what fit chooses on); test - val = the "
             "gap between the two")
#: Where the pump trajectories are kept between runs unless settings or --cache-dir say.
DEFAULT_CACHE = Path("~/.cache/twinops/simulator")


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


def score_model(predictor, test, horizon: int, cap: float,
                phm08: bool = True) -> dict[str, float]:
    """Test-protocol metrics of one predictor on the last-cycle test rows (`phm08`: with the
    C-MAPSS score, whose time constants are cycles)."""
    from training import metrics as M
    from training.truncation import band_coverage

    out = predictor.predict(test, horizon=horizon)
    y = test["rul"].to_numpy(dtype=float)
    pred = out["rul"].to_numpy()
    lo, hi = out["rul_lower"].to_numpy(), out["rul_upper"].to_numpy()
    m = {
        "rmse": M.rmse(y, pred),
        "score": M.phm08_score(y, pred),
        "mae": M.mae(y, pred),
        "coverage": M.interval_coverage(y, lo, hi),
        "width": M.mean_width(lo, hi),
        "coverage_by_band": band_coverage(y, lo, hi, cap),
    }
    m["units_missed"] = 1.0 - m["coverage"]  # one row per test unit
    if not phm08:
        del m["score"]
    return m


def run_seed(
    frame,
    readings,
    test,
    settings,
    seed: int,
    fraction: float,
    workdir: Path,
    unlabelled: bool = False,
    phm08: bool = True,
) -> dict:
    """Train both models for one seed on the same units; their test metrics + fit facts."""
    from training.train import fit

    train = sample_units(frame, fraction, seed, unlabelled)
    out: dict[str, dict] = {}
    for model in ("pinn", "baseline"):
        ts = settings.training.model_copy(update={"seed": seed, "physics": "on"})
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
        m = score_model(r.predictor, test, s.horizon, s.rul_cap, phm08)
        m["train_seconds"] = r.metrics["train_seconds"]
        m["val_rmse"] = r.metrics["val_rmse"]
        m["val_cut_rmse"] = r.metrics["val_cut_rmse"]
        m["rmse_gap"] = m["rmse"] - m["val_cut_rmse"]
        m["val_coverage"] = r.metrics["val_coverage"]
        m["val_cut_coverage"] = r.metrics["val_cut_coverage"]
        m["val_cut_constant_rmse"] = r.metrics["val_cut_constant_rmse"]  # the floor gate's
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
    chosen = min(("pinn", "baseline"), key=lambda k: out[k]["val_cut_rmse"])
    out["shipped"] = {**out[chosen], "chosen": chosen}
    out["constant"] = score_constant(train, test, settings.rul_cap, phm08)
    return out


def summarise(per_seed: list[dict], models=MODELS, metrics=METRICS) -> dict:
    """mean/std over seeds of every metric, per model, in the JSON layout of the issue.

    A metric a model does not have (None, e.g. the naive predictor's interval) stays None.
    """

    def stats(values: list) -> tuple[float | None, float | None]:
        if any(v is None for v in values):
            return None, None
        return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    summary: dict[str, dict] = {}
    for model in models:
        d: dict[str, float | None] = {}
        for key in dict.fromkeys((*metrics, "val_rmse")):
            mean, std = stats([s[model][key] for s in per_seed])
            d[f"{key}_mean"], d[f"{key}_std"] = mean, std
        d["coverage"] = d["coverage_mean"]
        bands = [s[model].get("coverage_by_band") for s in per_seed]
        if all(bands):
            d["coverage_by_band"] = {b: statistics.fmean(x[b] for x in bands) for b in bands[0]}
        if model == "shipped":
            d["chosen"] = [s[model]["chosen"] for s in per_seed]
        summary[model] = d
    return summary


def band_lines(summary: dict, models) -> str:
    """Coverage by true-RUL band per model, and which model was shipped per seed."""
    lines = []
    for model in models:
        bands = summary[model].get("coverage_by_band")
        if bands:
            cells = ", ".join(f"{b.removeprefix('coverage_')}: "
                              f"{'n/a' if v is None or math.isnan(v) else f'{v:.2f}'}"
                              for b, v in bands.items())
            lines.append(f"{model}: coverage by band {cells}")
    if "chosen" in summary.get("shipped", {}):
        lines.append(f"shipped per seed: {', '.join(summary['shipped']['chosen'])}")
    return "\n".join(lines)


def table(summary: dict, header: str, models=MODELS, metrics=METRICS,
          labels: dict[str, str] | None = None, note: str = "") -> str:
    """Readable mean ± std table, one row per model ("n/a" where a model has no such metric;
    `labels` renames columns, `note` is printed below)."""
    cols = list(metrics)
    rows = [["model", *[(labels or {}).get(c, c) for c in cols]]]

    def cell(d: dict, c: str) -> str:
        mean, std = d[f"{c}_mean"], d[f"{c}_std"]
        if mean is None or (isinstance(mean, float) and math.isnan(mean)):
            return "n/a"
        return f"{metrics[c].format(mean)} ± {metrics[c].format(std).lstrip('+')}"

    for model in models:
        rows.append([model] + [cell(summary[model], c) for c in cols])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols) + 1)]
    lines = [header, ""]
    for i, r in enumerate(rows):
        lines.append(" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))
        if i == 0:
            lines.append("-+-".join("-" * w for w in widths))
    if note:
        lines += ["", note]
    return "\n".join(lines)


def run_benchmark(
    data_dir: Path,
    subset: str = "FD001",
    seeds: int = 5,
    train_fraction: float = 1.0,
    max_epochs: int | None = None,
    settings=None,
    unlabelled: bool = False,
    fleet: str | None = None,
) -> dict:
    """Everything but printing: the JSON-able result of the benchmark. `fleet`
    ("simulator:<opts>", benchmarks.simulated_fleet) replaces the C-MAPSS files."""
    import shlex
    import sys
    from datetime import UTC, datetime

    from features.settings import get_settings

    # C-MAPSS is the turbofan
    settings = _resolved_training((settings or get_settings()).for_type("turbofan"), max_epochs)
    if fleet is not None:
        from benchmarks import simulated_fleet

        opts = simulated_fleet.parse(fleet)
        frame, readings, test, settings = simulated_fleet.fleets(settings, opts)
        subset = simulated_fleet.name(opts)
    else:
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
        "machine": machine(),
        "command": shlex.join(["twinops", *sys.argv[1:]]),  # as typed (or the caller's argv)
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "per_seed": per_seed,
        "total_seconds": time.perf_counter() - t0,
    }


def _resolved_training(settings, max_epochs: int | None):
    """`settings` with training resolved for its asset type (its by_type overrides applied,
    so the JSON's config is what ran) and --max-epochs, when given, over them."""
    ts = settings.training_settings().model_copy(update={"by_type": {}})
    if max_epochs is not None:
        ts = ts.model_copy(update={"max_epochs": max_epochs})
    return settings.model_copy(update={"training": ts})


def pump_fleets(n_train: int, n_test: int, fleet_seed: int, asset_type, cache_dir: Path | None):
    """(training frame: window features + RUL in hours of the run-to-failure pumps, their raw
    readings, their failure events, test rows: features of each in-service pump at its last
    reading with its true RUL in hours). Test pumps are other ProgPy units (seed + 1000)."""
    from features.labels import rul_labels
    from features.sources.pump import simulate_pump_fleet, simulate_pump_live
    from features.transforms import latest_window_features, window_features

    readings, events = simulate_pump_fleet(n_train, seed=fleet_seed, cache_dir=cache_dir)
    feats = window_features(readings, asset_type, events)
    labels = rul_labels(readings, events, per_cycle=asset_type.rul_per_cycle)
    frame = feats.merge(labels[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"],
                        how="inner", validate="one_to_one")
    live, truth = simulate_pump_live(n_test, seed=fleet_seed, cache_dir=cache_dir)
    last = latest_window_features(live, asset_type)
    test = last.merge(truth[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"],
                      how="inner", validate="one_to_one")
    if len(test) != n_test:
        raise RuntimeError(f"{len(test)} of {n_test} test pumps have features at their last "
                           "reading")
    return frame, readings, events, test


def mean_life(events, per_cycle: float) -> float:
    """Mean life of the run-to-failure pumps in RUL units: the failure cycle (cycles count
    readings from 1) x the sampling period."""
    return float(events["cycle"].astype(float).mean() * per_cycle)


def naive_predict(life: float, cycle, per_cycle: float):
    """The naive predictor: the fleet's mean life minus the asset's age, clipped at 0."""
    import numpy as np

    return np.clip(life - np.asarray(cycle, dtype=float) * per_cycle, 0.0, None)


def score_point(pred, test, phm08: bool = True, **facts) -> dict:
    """Test metrics of a point predictor without an interval (no coverage/width: None)."""
    from training import metrics as M

    y = test["rul"].to_numpy(dtype=float)
    m = {"rmse": M.rmse(y, pred), "mae": M.mae(y, pred), "coverage": None, "width": None,
         "train_seconds": 0.0, "val_rmse": None, "val_cut_rmse": None, "rmse_gap": None,
         "units_missed": None, **facts}
    if phm08:
        m["score"] = M.phm08_score(y, pred)
    return m


def score_constant(train, test, cap: float, phm08: bool = True) -> dict:
    """The constant predictor of the floor gate (pipelines.gates): every test unit gets the
    training rows' mean capped RUL. A model that does not beat it has learnt nothing."""
    import numpy as np

    mean = float(np.minimum(train["rul"].dropna().to_numpy(dtype=float), cap).mean())
    return score_point(np.full(len(test), mean), test, phm08, constant=mean)


def score_naive(life: float, test, per_cycle: float) -> dict:
    """Test metrics of the naive predictor (mean life - age)."""
    return score_point(naive_predict(life, test["cycle"], per_cycle), test, False,
                       mean_life=life)


def _finite_or_none(x):
    """JSON without NaN (not valid JSON): a NaN float becomes null."""
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite_or_none(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def machine() -> dict:
    import os
    import platform

    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}


def run_pump_benchmark(
    seeds: int = 5,
    n_train: int = 20,
    n_test: int = 20,
    fleet_seed: int = 7,
    max_epochs: int | None = None,
    settings=None,
    cache_dir: Path | None = None,
) -> dict:
    """Everything but printing: the JSON-able result of the pump benchmark (hours)."""
    from datetime import UTC, datetime

    from features.settings import get_settings

    settings = _resolved_training((settings or get_settings()).for_type("pump"), max_epochs)
    cache = Path(cache_dir or settings.simulator.cache_dir or DEFAULT_CACHE).expanduser()
    per_cycle = settings.type.rul_per_cycle
    t_sim = time.perf_counter()
    frame, readings, events, test = pump_fleets(n_train, n_test, fleet_seed, settings.type,
                                                cache)
    simulate_seconds = time.perf_counter() - t_sim
    life = mean_life(events, per_cycle)  # training pumps only: nothing is chosen on the test
    t0 = time.perf_counter()
    per_seed = []
    with tempfile.TemporaryDirectory(prefix="twinops-bench-rul-pump-") as tmp:
        for seed in range(seeds):
            r = run_seed(frame, readings, test, settings, seed, 1.0, Path(tmp), phm08=False)
            r["naive"] = score_naive(life, test, per_cycle)
            per_seed.append(r)
    summary = summarise(per_seed, PUMP_MODELS, PUMP_METRICS)
    y = test["rul"].to_numpy(dtype=float)
    cmd = (f"twinops benchmark rul --asset-type pump --seeds {seeds} --n-train {n_train} "
           f"--n-test {n_test} --fleet-seed {fleet_seed}"
           + (f" --max-epochs {max_epochs}" if max_epochs is not None else ""))
    return _finite_or_none({
        **summary,
        "config": {
            "asset_type": "pump",
            "rul_unit": settings.type.rul_unit,
            "seeds": seeds,
            "fleet_seed": fleet_seed,
            "n_train_units": int(frame["asset_id"].nunique()),
            "n_test_units": len(test),
            "test_life_fraction": [0.3, 0.95],
            "train_life_hours": {"mean": life,
                                 "min": float(events["cycle"].min() * per_cycle),
                                 "max": float(events["cycle"].max() * per_cycle)},
            "test_rul_hours": {"mean": float(y.mean()), "min": float(y.min()),
                               "max": float(y.max())},
            "rul_cap": settings.rul_cap,
            "horizon": settings.horizon,
            "interval_level": settings.training.interval_level,
            "profile": settings.profile,
            "training": settings.training_settings().model_dump(),  # rul_cap/per_cycle resolved
            "window": settings.window,
            "cache_dir": str(cache),
            "naive": "mean life of the training pumps - age, clipped at 0; no interval",
            "phm08_score": "left out: its time constants are C-MAPSS cycles",
        },
        "machine": machine(),
        "command": cmd,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "per_seed": per_seed,
        "simulate_seconds": simulate_seconds,
        "total_seconds": time.perf_counter() - t0,
    })


def pump_header(result: dict) -> str:
    cfg = result["config"]
    return (
        f"RUL on the ProgPy pump (hours): {cfg['n_train_units']} training pumps run to failure, "
        f"{cfg['n_test_units']} in-service test pumps at their last reading (fleet seed "
        f"{cfg['fleet_seed']}, same fleets for every seed), {cfg['seeds']} seed(s); "
        f"{cfg['interval_level']:.0%} intervals; mean ± std"
    )


PUMP_NOTE = ("naive = mean life of the training pumps - age (h), clipped at 0: no interval "
             "(n/a). PHM08 score left out (a C-MAPSS cycles metric).")


def command(
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Folder with train_/test_/RUL_<subset>.txt (C-MAPSS; required for "
                     "the turbofan)."),
    ] = None,
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
    fleet: Annotated[
        str | None,
        typer.Option(help="simulator:modes=1|2,regimes=1|6,train=N,test=N,seed=N: the "
                     "turbofan protocol on a simulated fleet (two fault modes like FD003, six "
                     "operating conditions like FD002/FD004) instead of --data-dir."),
    ] = None,
    asset_type: Annotated[
        str,
        typer.Option("--asset-type", "-t", help="turbofan (NASA C-MAPSS, --data-dir) or pump "
                     "(the ProgPy pump simulator, RUL in hours)."),
    ] = "turbofan",
    n_train: Annotated[
        int | None, typer.Option(min=4, help="Pump: training pumps run to failure [20].")
    ] = None,
    n_test: Annotated[
        int | None, typer.Option(min=1, help="Pump: in-service test pumps [20].")
    ] = None,
    fleet_seed: Annotated[
        int | None, typer.Option(help="Pump: simulator seed of both fleets (the same for "
                                 "every benchmark seed) [7].")
    ] = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(help="Pump: simulator cache [simulator.cache_dir, else "
                     "~/.cache/twinops/simulator]."),
    ] = None,
) -> None:
    """RUL: physics-informed model vs data-only baseline (JSON + table), on C-MAPSS or, with
    --asset-type pump, on the ProgPy pump (+ a naive predictor)."""
    pump_opts = {"--n-train": n_train, "--n-test": n_test, "--fleet-seed": fleet_seed,
                 "--cache-dir": cache_dir}
    if asset_type == "pump":
        cmapss_opts = {"--data-dir": data_dir is not None, "--subset": subset != "FD001",
                       "--train-fraction": train_fraction != 1.0, "--unlabelled": unlabelled}
        bad = [k for k, given in cmapss_opts.items() if given]
        if bad:
            raise typer.BadParameter(f"{', '.join(bad)}: C-MAPSS options, not for the pump")
        result = run_pump_benchmark(
            seeds, n_train or 20, n_test or 20, 7 if fleet_seed is None else fleet_seed,
            max_epochs, cache_dir=cache_dir,
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        typer.echo(table(result, pump_header(result), PUMP_MODELS, PUMP_METRICS, PUMP_LABELS,
                         f"{PUMP_NOTE}\n{BAND_NOTE}\n{band_lines(result, PUMP_MODELS)}"))
        typer.echo(f"\nwritten: {out}")
        return
    if asset_type != "turbofan":
        raise typer.BadParameter(f"{asset_type!r}: the RUL benchmark runs on turbofan "
                                 "(C-MAPSS) or pump", param_hint="--asset-type")
    bad = [k for k, v in pump_opts.items() if v is not None]
    if bad:
        raise typer.BadParameter(f"{', '.join(bad)}: pump options (--asset-type pump)")
    if (data_dir is None) == (fleet is None):
        raise typer.BadParameter("give one of --data-dir (C-MAPSS) or --fleet simulator:...",
                                 param_hint="--data-dir")
    try:
        result = run_benchmark(data_dir, subset, seeds, train_fraction, max_epochs,
                               unlabelled=unlabelled, fleet=fleet)
    except ValueError as exc:
        if fleet is None or "--fleet" not in str(exc):
            raise
        raise typer.BadParameter(str(exc), param_hint="--fleet") from None
    subset = result["config"]["subset"]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    cfg = result["config"]
    header = (
        f"RUL on {'C-MAPSS ' if fleet is None else ''}{subset}: {cfg['n_train_units']} "
        "training units "
        f"(fraction {train_fraction:g}"
        f"{', rest unlabelled in service' if cfg['unlabelled_in_service_units'] else ''}), "
        f"{cfg['n_test_units']} test units at their last cycle"
        f"{'' if fleet is None else ' (in service, cut at 30-95% of life)'}, "
        f"{seeds} seed(s); {cfg['interval_level']:.0%} intervals; mean ± std"
    )
    typer.echo(table(result, header, labels=LABELS,
                     note=f"{BAND_NOTE}\n{band_lines(result, MODELS)}"))
    typer.echo(f"\nwritten: {out}")
