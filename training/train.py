"""`fit(frame, settings)`: train, calibrate, evaluate and save one RUL model.

    frame ──► clean (drop NaN/inf feature rows; NaN rul = unlabelled, kept)
          ──► + virtual assets: each labelled asset's raw readings worn at the pace of
                `time_scale_copies` others, through the window transform (training.augment;
                the damage law's symmetry; needs `readings`)
          ──► RULDataModule (real labelled assets into F folds, virtual ones in their
              source's fold; unlabelled ones feed the physics)
                                                          │
       L.Trainer(cpu, seeded, no logger/checkpoints, early stop on out-of-fold val/rmse)
          once per candidate feature set (all; without each optional group), on large
          frames side by side (this process + worker processes, one per core), keep the
          one with the lowest out-of-fold val/rmse       │ best weights (in memory)
                                                          ▼
             out-of-fold predictions, every labelled asset ──► ConformalCalibration (CV+)
                                                          │
             save_artifact(dir) ──► load_predictor(dir) ──► evaluate out of fold
                                                          ▼
             FitResult(predictor, metrics, artifact_dir, physics_params, ...)

The returned predictor is the one *loaded back from the artifact*, so whatever is
evaluated here is byte-for-byte what the registry stores and serving loads.
The data-only baseline is the same call with `settings.training.data_only()`: the physics
weights at 0 and no virtual assets.

Why compare feature sets per fleet: some features pay only with enough failures. The
`*_vs_start` group (features.transforms) cut out-of-fold RMSE on C-MAPSS FD001 with 100
run-to-failure units (7.97 -> 7.70) but raised it with 20 (13.29 -> 14.68) and on the
demo's 40-asset fleet. Which side a fleet is on is an empirical question, answered on the
same out-of-fold predictions that pick the epoch (settings.training.select_features; off =
every feature, half the CPU time). The selection effect of one choice between two
candidates is small next to the gaps it picks between, and is accepted like the epoch's.

Intervals are calibrated on the uncapped RUL (see training.conformal), the point model on
the capped target. Every labelled asset is predicted out of fold (by the ensemble members
that never trained on it, training.datamodule), and those predictions pick the epoch,
calibrate the intervals and give the `val_*` metrics. Honest calibration numbers: the same
assets both calibrate the intervals and report them, so `val_coverage` / `val_width` are
computed leave-one-asset-out (each asset is scored with intervals calibrated on the others);
the in-sample value is `val_coverage_insample`. The served model averages all members, so it
is a little more accurate than its out-of-fold figures: they, and the intervals calibrated on
them, err on the conservative side. Early stopping also looks at these predictions; its
selection effect (one epoch number for the whole fleet) is small and accepted here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from training.conformal import ConformalCalibration


@dataclass
class FitResult:
    predictor: object  # training.artifact.RULPredictor
    metrics: dict[str, float]
    artifact_dir: Path
    physics_params: dict
    feature_columns: list[str] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    #: out-of-fold rows: asset_id, cycle, rul_true (capped), rul, rul_lower, rul_upper, p_fail,
    #: health
    val_predictions: object = None
    #: assets the model can only predict in sample (none with cross-fitting; older models
    #: with a single validation split listed their training assets here)
    train_assets: list[str] = field(default_factory=list)
    #: assets the model predicts out of sample (`predict(..., out_of_fold=True)`)
    val_assets: list[str] = field(default_factory=list)
    #: dtype name of each feature column in the training frame (the pyfunc signature uses them)
    feature_dtypes: dict[str, str] = field(default_factory=dict)


def _clean(frame, feature_columns: list[str]):
    """Drop rows with non-finite features or an infinite label; NaN rul = unlabelled, kept."""
    x = frame[feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)
    rul = frame["rul"].to_numpy(dtype=np.float64, na_value=np.nan)
    ok = np.isfinite(x).all(axis=1) & ~np.isinf(rul)
    return frame.loc[ok], int((~ok).sum())


def _loao_coverage(pred, y, assets, level: float) -> tuple[float, float]:
    """Leave-one-asset-out conformal coverage and mean width over the calibration assets."""
    covered = widths = n = 0.0
    uniq = np.unique(assets)
    if uniq.size < 2:
        return float("nan"), float("nan")
    for a in uniq:
        hold = assets == a
        cal = ConformalCalibration.fit(pred[~hold], y[~hold])
        lo, hi = cal.interval(pred[hold], level)
        covered += float(((y[hold] >= lo) & (y[hold] <= hi)).sum())
        widths += float(np.where(np.isfinite(hi), hi - lo, np.nan).sum())
        n += hold.sum()
    return float(covered / n), float(widths / n)


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's banner lines and known-harmless warnings for one fit."""
    names = ["lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for msg in (
                ".*does not have many workers.*",
                ".*number of training batches.*",
                ".*GPU available but not used.*",
                ".*LeafSpec.*",
                ".*litlogger.*",
            ):
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


#: Name of the candidate feature set that keeps every feature column.
ALL_FEATURES = "all"


def feature_candidates(cols: list[str]) -> dict[str, list[str]]:
    """Feature sets `fit` compares: all of `cols`, and `cols` without each optional group
    of `features.transforms.OPTIONAL_FEATURE_GROUPS` that `cols` contains ("without_<group>").
    """
    from features.transforms import OPTIONAL_FEATURE_GROUPS

    out = {ALL_FEATURES: list(cols)}
    for group, members in OPTIONAL_FEATURE_GROUPS.items():
        drop = set(members)
        kept = [c for c in cols if c not in drop]
        if 0 < len(kept) < len(cols):
            out[f"without_{group}"] = kept
    return out


def _build(frame, cols: list[str], ts, virtual_parents=None):
    """The datamodule and the untrained module of one candidate (both deterministic in
    `ts.seed`, so a worker process and this one build the same pair)."""
    from training.datamodule import RULDataModule
    from training.module import RULModule

    n_folds = min(ts.n_folds, ts.n_members)
    dm = RULDataModule(
        frame, cols, ts.rul_cap, n_folds, ts.batch_size, ts.seed, ts.pair_max_gap, virtual_parents
    )
    module = RULModule(
        n_features=len(cols),
        hidden_size=ts.hidden_size,
        rul_cap=ts.rul_cap,
        learning_rate=ts.learning_rate,
        weight_time_consistency=ts.weight_time_consistency,
        weight_damage_law=ts.weight_damage_law,
        max_epochs=ts.max_epochs,
        n_members=ts.n_members,
        n_folds=dm.n_folds,
    )
    return dm, module


def _train(frame, cols: list[str], ts, accelerator: str, virtual_parents=None):
    """One seeded training run on `cols`: (datamodule, module with its best weights, epochs)."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    # One intra-op thread: for a network this small, thread hand-offs cost more than the
    # math (measured on 2 cores: 1.3 ms vs 6.4 ms per step with 2 threads).
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    L.seed_everything(ts.seed, workers=True, verbose=False)
    dm, module = _build(frame, cols, ts, virtual_parents)
    try:
        with _quiet_lightning():
            trainer = L.Trainer(
                max_epochs=ts.max_epochs,
                accelerator=accelerator,
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                deterministic=True,
                num_sanity_val_steps=0,
                callbacks=[EarlyStopping("val/rmse", patience=8, min_delta=0.01, mode="min")],
            )
            trainer.fit(module, datamodule=dm)
    finally:
        torch.set_num_threads(old_threads)
    if module.best_state is not None:
        module.load_state_dict(module.best_state)
    return dm, module, int(trainer.current_epoch)


@dataclass
class _Outcome:
    """What a worker process sends back for one candidate: its best weights as numpy arrays
    (plain pickles: no shared-memory tensors outliving the worker) and its scores."""

    state: dict[str, np.ndarray]
    best_rmse: float
    best_epoch: int
    epochs: int


def _train_in_worker(frame, cols: list[str], ts, virtual_parents) -> _Outcome:
    """`_train` in a worker process (a top-level function, so that it pickles)."""
    _, module, epochs = _train(frame, cols, ts, "cpu", virtual_parents)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return _Outcome(state, float(module.best_rmse), int(module.best_epoch), epochs)


#: Fewest training rows (real and virtual) for which `fit` starts worker processes on its
#: own (`training.workers` 0). A worker pays when one candidate's training takes longer than
#: the worker's start (spawn, torch and Lightning imports, the frame pickled over: ~35 s on
#: the 2-core container, where that is one candidate's training on ~20 000 rows). Measured
#: there on C-MAPSS FD001: at 20% of the units the baseline (~4 000 rows) took 46 s with a
#: worker and 33 s without, the pinn (~20 000 rows) 68 s and 74 s; on all units the pinn
#: (~63 000 rows) 199 s and 328-336 s. Both costs scale with the CPU, so a row count
#: carries over to other machines.
AUTO_WORKERS_MIN_ROWS = 15_000


def candidate_workers(ts, n_candidates: int, accelerator: str, n_rows: int) -> int:
    """Processes `fit` trains its candidate feature sets in, this one included, at most one
    per candidate: `ts.workers`, or with 0 one per CPU core this process may use when the
    training frame has at least AUTO_WORKERS_MIN_ROWS rows (else 1). 1 on a GPU (one
    device) and in a daemonic process (which may not start children)."""
    import multiprocessing

    if accelerator != "cpu" or multiprocessing.current_process().daemon:
        return 1
    if ts.workers:
        wanted = ts.workers
    elif n_rows < AUTO_WORKERS_MIN_ROWS:
        wanted = 1
    elif hasattr(os, "sched_getaffinity"):
        wanted = len(os.sched_getaffinity(0))
    else:
        wanted = os.cpu_count() or 1
    return max(1, min(wanted, n_candidates))


def _train_candidates(frame, candidates: dict[str, list[str]], ts, accelerator, parents):
    """Train every candidate feature set; (name, datamodule, module, epochs, val RMSE of each)
    of the one with the lowest out-of-fold validation RMSE.

    The first candidate (all features) trains in this process; with more than one worker
    (`candidate_workers`) the others train at the same time in spawned worker processes.
    Why processes: each run uses one thread (see `_train`), so a second core would sit idle;
    threads cannot share it out, because the seed (`seed_everything`), the thread count and
    the GIL-bound Python side of a Lightning step are process-wide. Why this process keeps
    one: a worker pays for its start (spawn, torch and Lightning imports, the frame pickled
    over), and that start overlaps this process's own run instead of adding to it (on
    small frames it still costs more than it saves: AUTO_WORKERS_MIN_ROWS). Every run is seeded and
    deterministic on one thread, so a worker's weights are the ones this process would have
    trained: a winner from a worker gets its datamodule and module rebuilt here (cheap,
    deterministic) and its weights loaded. Stdlib `concurrent.futures` with spawned
    workers: no fork of a process that may already hold threads (Prefect, torch).
    """
    import torch

    workers = candidate_workers(ts, len(candidates), accelerator, len(frame))
    (first, first_cols), *rest = candidates.items()
    outcomes: dict[str, _Outcome] = {}  # candidates trained in worker processes
    if workers <= 1 or not rest:
        fits = {name: _train(frame, c, ts, accelerator, parents) for name, c in candidates.items()}
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx) as pool:
            futures = {n: pool.submit(_train_in_worker, frame, c, ts, parents) for n, c in rest}
            fits = {first: _train(frame, first_cols, ts, accelerator, parents)}
            outcomes = {name: f.result() for name, f in futures.items()}
    val_rmse = {name: float(mod.best_rmse) for name, (_, mod, _) in fits.items()}
    val_rmse.update({name: o.best_rmse for name, o in outcomes.items()})
    best = min(val_rmse, key=val_rmse.get)
    if best in fits:
        return (best, *fits[best], val_rmse)
    won = outcomes[best]
    dm, module = _build(frame, candidates[best], ts, parents)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in won.state.items()})
    module.best_rmse, module.best_epoch = won.best_rmse, won.best_epoch
    return best, dm, module, won.epochs, val_rmse


def default_artifact_dir(settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.state_dir) / "models" / f"rul-{stamp}-{uuid.uuid4().hex[:6]}"


def fit(
    frame,
    settings,
    feature_columns: list[str] | None = None,
    *,
    readings=None,
    out_dir: str | Path | None = None,
    accelerator: str = "cpu",
    horizon: int | None = None,
) -> FitResult:
    """Train the physics-informed RUL network on a labelled frame and save its artifact.

    Rows whose `rul` is NaN are unlabelled (assets still in service): assets with no label
    at all join the training side as collocation points of the physics terms (see
    training.datamodule); they never enter validation or calibration.
    `readings`: the raw readings (contract columns) of the run-to-failure assets, from which
    the virtual assets are built (training.augment); needed when
    `settings.training.time_scale_copies` > 0.
    """
    import pandas as pd
    import torch

    from training import evaluate as ev
    from training.artifact import ModelSpec, load_predictor, save_artifact
    from training.datamodule import infer_feature_columns
    from training.network import member_folds, out_of_fold_mean

    ts = settings.training
    horizon = int(horizon if horizon is not None else settings.serving.horizon)
    cols = list(feature_columns) if feature_columns is not None else infer_feature_columns(frame)
    if not cols:
        raise ValueError("no feature columns in the training frame")
    frame, n_dropped = _clean(frame, cols)
    if accelerator == "cuda" and not torch.cuda.is_available():
        accelerator = "cpu"
    t0 = time.perf_counter()
    candidates = feature_candidates(cols) if ts.select_features else {ALL_FEATURES: cols}
    dtypes = {c: str(frame[c].dtype) for c in cols}  # of the real rows (the pyfunc signature)
    parents: dict[str, tuple[str, str]] = {}  # virtual id -> (source, donor)
    if ts.time_scale_copies:
        from training.augment import fleet_paces, virtual_assets

        if readings is None:
            raise ValueError(
                "virtual assets (training.time_scale_copies > 0) are built from the raw "
                "readings: pass fit(..., readings=...) or set time_scale_copies=0"
            )
        paces = fleet_paces(frame, ts.time_scale_copies, ts.seed, ts.max_virtual_assets)
        virtual, parents = virtual_assets(frame, readings, cols, paces, settings.window, ts.seed)
        frame = pd.concat([frame, virtual], ignore_index=True)
    feature_set, dm, module, epochs, val_rmse = _train_candidates(
        frame, candidates, ts, accelerator, parents
    )
    cols = candidates[feature_set]
    train_seconds = time.perf_counter() - t0
    net = module.net.cpu().eval()

    # ---- conformal calibration on the out-of-fold predictions of every labelled asset
    vp = dm.val_pairs
    with torch.inference_mode():
        members = net.members(torch.from_numpy(vp.x))[0]
        folds = member_folds(ts.n_members, dm.n_folds)
        val_pred = out_of_fold_mean(members, folds, torch.from_numpy(vp.fold))
    val_pred = val_pred.numpy().astype(np.float64)
    y_val = vp.y.astype(np.float64)
    # Calibrate against the *uncapped* RUL: the interval and p_fail are about when the asset
    # fails, not about the training target. Near the cap this widens the upper side honestly
    # (a healthy asset's remaining life is not known to be 125).
    y_true = vp.rul_raw.astype(np.float64)
    calibration = ConformalCalibration.fit(val_pred, y_true)
    physics_params = module.damage_law.params()
    spec = ModelSpec(
        n_features=len(cols),
        hidden_size=ts.hidden_size,
        feature_columns=cols,
        scaler_mean=[float(v) for v in dm.scaler.mean],
        scaler_std=[float(v) for v in dm.scaler.std],
        rul_cap=float(ts.rul_cap),
        interval_level=float(ts.interval_level),
        calibration=calibration.to_dict(),
        n_layers=module.hparams.n_layers,
        dropout=module.hparams.dropout,
        n_members=ts.n_members,
        n_folds=dm.n_folds,
        asset_folds=dict(dm.folds),
        physics={
            **physics_params,
            "weight_time_consistency": ts.weight_time_consistency,
            "weight_damage_law": ts.weight_damage_law,
        },
        metadata={
            "trained_at": datetime.now(UTC).isoformat(),
            "labelled_assets": len(dm.labelled_assets),
            "unlabelled_assets": len(dm.unlabelled_assets),
            "seed": ts.seed,
        },
    )
    artifact_dir = save_artifact(
        Path(out_dir) if out_dir else default_artifact_dir(settings), net, spec
    )
    predictor = load_predictor(artifact_dir)

    # ---- out-of-fold metrics on every labelled asset, with the predictor as stored
    val_frame = dm.labelled_frame.sort_values(["asset_id", "cycle"], kind="stable")
    m = ev.evaluate(predictor, val_frame, horizon=horizon, out_of_fold=True)
    out = predictor.predict(val_frame, horizon=horizon, out_of_fold=True)
    cov, width = _loao_coverage(out["rul"].to_numpy(), y_true, vp.asset_id, ts.interval_level)
    train_mean = float(dm.train_pairs.y[dm.train_pairs.labelled > 0].mean())
    metrics = {f"val_{k}": float(v) for k, v in m.items()}
    metrics.update(
        {
            "val_coverage_insample": metrics["val_coverage"],
            "val_width_insample": metrics["val_width"],
            "val_coverage": cov,
            "val_width": width,
            "val_constant_rmse": ev.constant_rmse(train_mean, val_frame, ts.rul_cap),
            "alpha": physics_params["alpha"],
            "train_seconds": train_seconds,
            "epochs": float(epochs),
            "best_epoch": float(module.best_epoch),
            "n_dropped_rows": float(n_dropped),
            "n_train_rows": float(len(dm.labelled_frame)),
            "n_unlabelled_rows": float(dm.n_unlabelled_rows),
            "n_virtual_rows": float(dm.n_virtual_rows),
            **{f"select_val_rmse_{name}": v for name, v in val_rmse.items()},
        }
    )
    val_predictions = pd.DataFrame(
        {
            "asset_id": val_frame["asset_id"].astype(str).to_numpy(),
            "cycle": val_frame["cycle"].to_numpy(),
            "rul_true": y_val,
        }
    )
    for c in out.columns:
        val_predictions[c] = out[c].to_numpy()
    params = {
        **ts.model_dump(),
        "n_features": len(cols),
        "feature_set": feature_set,
        "n_train_assets": len(dm.labelled_assets),
        "n_folds": dm.n_folds,
        "horizon": horizon,
        "damage_law": physics_params["damage_law"],
    }
    return FitResult(
        predictor=predictor,
        metrics=metrics,
        artifact_dir=Path(artifact_dir),
        physics_params=physics_params,
        feature_columns=cols,
        params=params,
        val_predictions=val_predictions,
        train_assets=[],
        val_assets=dm.labelled_assets,
        feature_dtypes={c: dtypes[c] for c in cols},
    )
