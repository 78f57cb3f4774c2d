"""`fit(frame, settings)`: train, calibrate, evaluate and save one RUL model.

    frame ──► clean (drop NaN/inf feature rows; NaN rul = unlabelled, kept)
          ──► + virtual assets: each labelled asset's raw readings worn at the pace of
                `time_scale_copies` others, through the window transform (training.augment;
                the damage law's symmetry; needs `readings`)
          ──► training.candidates: one seeded Lightning run per candidate, physics on or off
              (training.physics "auto": both) x feature set; each one's epoch chosen on the
              all-rows out-of-fold RMSE; each checkpoints every epoch under
              <state_dir>/training-resume/<hash of the inputs>/, so a rerun after a kill
              resumes every candidate (all its ensemble members: one module) where it was,
              at most one epoch lost; the directory is removed when `fit` completes
          ──► training.blend: per variant, its feature sets' members as one ensemble
          ──► the candidate (or blend) with the lowest cut validation RMSE at that epoch
              (training.truncation: out-of-fold predictions at random cuts of each unit's
              life, against the uncapped RUL, as a test unit is scored; training.module
              says why the two jobs read two figures)
                                                          │ best weights (in memory)
                                                          ▼
             out-of-fold predictions, every labelled asset ──► ConformalCalibration (CV+)
                                                          │
             save_artifact(dir) ──► load_predictor(dir) ──► evaluate out of fold
                                                          ▼
             FitResult(predictor, metrics, artifact_dir, physics_params, ...)

The returned predictor is the one *loaded back from the artifact*, so whatever is
evaluated here is byte-for-byte what the registry stores and serving loads.
The data-only baseline is the same call with `settings.training.data_only()`: the physics
weights at 0 and no virtual assets. With `physics` "auto" (the default) `fit` trains both
and ships the winner of the cut validation, so a fleet where the physics does not pay gets
the baseline (metrics `select_val_rmse_<variant>_<feature set>`, param `physics_variant`).

Intervals are calibrated on the uncapped RUL (see training.conformal), the point model on
the capped target. Every labelled asset is predicted out of fold (by the ensemble members
that never trained on it, training.datamodule), and those predictions pick the epoch,
calibrate the intervals and give the `val_*` metrics. Honest calibration numbers: the same
assets both calibrate the intervals and report them, so `val_coverage` / `val_width` are
computed leave-one-asset-out (each asset is scored with intervals calibrated on the others);
the in-sample value is `val_coverage_insample`. The served model averages all members, so it
is a little more accurate than its out-of-fold figures: they, and the intervals calibrated on
them, err on the conservative side.
"""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from training.blend import blends
from training.candidates import (
    ALL_FEATURES,
    feature_candidates,
    resume_directory,
    train_candidates,
)
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
    #: assets the model predicts out of sample (`predict(..., out_of_fold=True)`)
    val_assets: list[str] = field(default_factory=list)
    #: dtype name of each feature column in the training frame (the pyfunc signature uses them)
    feature_dtypes: dict[str, str] = field(default_factory=dict)


def _clean(frame, feature_columns: list[str], may_be_missing: set[str] = frozenset()):
    """Drop rows with a missing or infinite feature, or an infinite label. NaN rul =
    unlabelled, kept; a NaN in `may_be_missing` (the features of an optional sensor that
    was missing) is kept, and imputed by the Standardizer."""
    x = frame[feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)
    rul = frame["rul"].to_numpy(dtype=np.float64, na_value=np.nan)
    required = np.array([c not in may_be_missing for c in feature_columns], dtype=bool)
    ok = (~np.isnan(x[:, required]).any(axis=1) & ~np.isinf(x).any(axis=1) & ~np.isinf(rul))
    ok &= ~np.isnan(x).all(axis=1)
    return frame.loc[ok], int((~ok).sum())


def optional_features(asset_type) -> set[str]:
    """The features of the type's optional sensors: NaN there is a missing sensor."""
    from features.transforms import SENSOR_FEATURES, sensor_features

    return {c for suffix in SENSOR_FEATURES
            for c in sensor_features(asset_type.optional_sensors, suffix)}


def _loao_intervals(pred, y, assets, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-asset-out conformal intervals of the calibration rows: each asset's rows
    get the interval calibrated on the other assets (NaN with fewer than 2 assets)."""
    lower, upper = np.full_like(pred, np.nan), np.full_like(pred, np.nan)
    uniq = np.unique(assets)
    if uniq.size < 2:
        return lower, upper
    for a in uniq:
        hold = assets == a
        cal = ConformalCalibration.fit(pred[~hold], y[~hold])
        lower[hold], upper[hold] = cal.interval(pred[hold], level)
    return lower, upper


def _coverage(y, lower, upper) -> tuple[float, float]:
    """(coverage, mean width) of intervals; NaN where there are none."""
    from training import metrics as M

    if np.isnan(lower).all():
        return float("nan"), float("nan")
    return M.interval_coverage(y, lower, upper), float(np.nanmean(np.where(
        np.isfinite(upper), upper - lower, np.nan)))


#: The cut validation figures that depend on the intervals (training.truncation.cut_metrics).
CUT_INTERVAL_METRICS = ("coverage", "width", "units_missed")


def _cut_intervals(val_pairs, pred, lower, upper, train_mean: float, cap: float) -> dict:
    """`val_cut_*` interval figures with leave-one-asset-out intervals (evaluate's use
    intervals calibrated on the same assets, as `val_coverage` does below), and a constant
    predictor's RMSE at the cuts: the floor gate's comparator."""
    from training.truncation import band_names, cut_metrics, weighted_rmse

    y, w = val_pairs.rul_raw.astype(np.float64), val_pairs.weight.astype(np.float64)
    m = cut_metrics(val_pairs.asset_id, y, pred, lower, upper, w, cap)
    out = {f"val_cut_{k}": m[k] for k in (*CUT_INTERVAL_METRICS, *band_names(cap))}
    out["val_cut_constant_rmse"] = weighted_rmse(train_mean - y, w)
    return out


def default_artifact_dir(settings) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(settings.state_dir) / "models" / f"rul-{stamp}-{uuid.uuid4().hex[:6]}"


def _with_virtual_assets(frame, readings, cols: list[str], settings):
    """`frame` plus the virtual run-to-failure assets of the damage law's time-scaling
    symmetry (training.augment), and {virtual id: (source, donor)}."""
    import pandas as pd

    from training.augment import fleet_paces, same_wear_path, virtual_assets

    ts = settings.training_settings()
    if readings is None:
        raise ValueError(
            "virtual assets (training.time_scale_copies > 0) are built from the raw "
            "readings: pass fit(..., readings=...) or set time_scale_copies=0"
        )
    paces = fleet_paces(frame, ts.time_scale_copies, ts.seed, ts.max_virtual_assets,
                        settings.type.rul_per_cycle,
                        same_wear_path(frame, readings, settings.type))
    virtual, parents = virtual_assets(frame, readings, cols, paces, settings.type, ts.seed)
    return pd.concat([frame, virtual], ignore_index=True), parents


def _calibrate(dm, module, n_members: int):
    """Out-of-fold predictions of every labelled validation row, and the conformal
    calibration fitted on them against the *uncapped* RUL: the interval and p_fail are
    about when the asset fails, not about the training target (near the cap this widens
    the upper side honestly: a healthy asset's remaining life is not known to be 125)."""
    import torch

    from training.network import member_folds, out_of_fold_mean

    net = module.net.cpu().eval()
    vp = dm.val_pairs
    with torch.inference_mode():
        members = net.members(torch.from_numpy(vp.x))[0]
        folds = member_folds(n_members, dm.n_folds)
        val_pred = out_of_fold_mean(members, folds, torch.from_numpy(vp.fold))
    val_pred = val_pred.numpy().astype(np.float64)
    y_true = vp.rul_raw.astype(np.float64)
    return net, y_true, ConformalCalibration.fit(val_pred, y_true)


def _spec(cols, dm, module, ts, calibration, physics_params):
    from training.artifact import ModelSpec

    return ModelSpec(
        n_features=len(cols),
        hidden_size=ts.hidden_size,
        feature_columns=cols,
        scaler_mean=[float(v) for v in dm.scaler.mean],
        scaler_std=[float(v) for v in dm.scaler.std],
        rul_cap=float(ts.rul_cap),
        rul_per_cycle=float(ts.rul_per_cycle),
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


def fit(
    frame,
    settings,
    feature_columns: list[str] | None = None,
    *,
    readings=None,
    out_dir: str | Path | None = None,
    accelerator: str = "cpu",
    horizon: float | None = None,
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
    from training.artifact import load_predictor, save_artifact
    from training.datamodule import infer_feature_columns

    ts = settings.training_settings()
    horizon = float(horizon if horizon is not None else settings.horizon)
    cols = list(feature_columns) if feature_columns is not None else infer_feature_columns(frame)
    if not cols:
        raise ValueError("no feature columns in the training frame")
    frame, n_dropped = _clean(frame, cols, optional_features(settings.type))
    if accelerator == "cuda" and not torch.cuda.is_available():
        accelerator = "cpu"
    t0 = time.perf_counter()
    feature_sets = feature_candidates(cols) if ts.select_features else {ALL_FEATURES: cols}
    variants = ts.physics_variants()
    candidates = {f"{v}/{name}": (c, vts) for v, vts in variants.items()
                  for name, c in feature_sets.items()}
    dtypes = {c: str(frame[c].dtype) for c in cols}  # of the real rows (the pyfunc signature)
    parents: dict[str, tuple[str, str]] = {}  # virtual id -> (source, donor)
    if any(vts.time_scale_copies for vts in variants.values()):
        frame, parents = _with_virtual_assets(frame, readings, cols, settings)
    resume_root = resume_directory(Path(settings.state_dir) / "training-resume", frame,
                                   candidates, accelerator, parents)
    fits = train_candidates(frame, candidates, accelerator, parents, resume_root)
    blended, blend_candidates, blend_sets = blends(fits, candidates)
    fits, candidates = {**fits, **blended}, {**candidates, **blend_candidates}
    val_rmse = {name: float(module.best_rmse) for name, (_, module, _) in fits.items()}
    chosen = min(val_rmse, key=val_rmse.get)
    dm, module, epochs = fits[chosen]
    cols, ts = candidates[chosen]
    variant, feature_set = chosen.split("/", 1)
    train_seconds = time.perf_counter() - t0

    net, y_true, calibration = _calibrate(dm, module, ts.n_members)
    physics_params = module.damage_law.params()
    artifact_dir = save_artifact(
        Path(out_dir) if out_dir else default_artifact_dir(settings),
        net, _spec(cols, dm, module, ts, calibration, physics_params),
    )
    predictor = load_predictor(artifact_dir)

    # ---- out-of-fold metrics on every labelled asset, with the predictor as stored
    val_frame = dm.labelled_frame.sort_values(["asset_id", "cycle"], kind="stable")
    m = ev.evaluate(predictor, val_frame, horizon=horizon, out_of_fold=True)
    out = predictor.predict(val_frame, horizon=horizon, out_of_fold=True)
    pred = out["rul"].to_numpy()
    lower, upper = _loao_intervals(pred, y_true, dm.val_pairs.asset_id, ts.interval_level)
    cov, width = _coverage(y_true, lower, upper)
    train_mean = float(dm.train_pairs.y[dm.train_pairs.labelled > 0].mean())
    metrics = {f"val_{k}": float(v) for k, v in m.items()}
    metrics.update(
        {
            "val_coverage_insample": metrics["val_coverage"],
            "val_width_insample": metrics["val_width"],
            "val_coverage": cov,
            "val_width": width,
            "val_constant_rmse": ev.constant_rmse(train_mean, val_frame, ts.rul_cap),
            **_cut_intervals(dm.val_pairs, pred, lower, upper, train_mean, ts.rul_cap),
            "alpha": physics_params["alpha"],
            "train_seconds": train_seconds,
            "epochs": float(epochs),
            "best_epoch": float(module.best_epoch),
            "n_dropped_rows": float(n_dropped),
            "n_train_rows": float(len(dm.labelled_frame)),
            "n_unlabelled_rows": float(dm.n_unlabelled_rows),
            "n_virtual_rows": float(dm.n_virtual_rows),
            **{f"select_val_rmse_{name.replace('/', '_')}": v for name, v in val_rmse.items()},
        }
    )
    val_predictions = pd.DataFrame(
        {
            "asset_id": val_frame["asset_id"].astype(str).to_numpy(),
            "cycle": val_frame["cycle"].to_numpy(),
            "rul_true": dm.val_pairs.y.astype(np.float64),
        }
    )
    for c in out.columns:
        val_predictions[c] = out[c].to_numpy()
    params = {
        **ts.model_dump(),
        "n_features": len(cols),
        "feature_set": feature_set,
        "blended_feature_sets": ",".join(blend_sets.get(chosen, [])),
        "physics_variant": variant,
        "n_train_assets": len(dm.labelled_assets),
        "n_folds": dm.n_folds,
        "horizon": horizon,
        "damage_law": physics_params["damage_law"],
    }
    shutil.rmtree(resume_root, ignore_errors=True)  # the run completed: nothing to resume
    return FitResult(
        predictor=predictor,
        metrics=metrics,
        artifact_dir=Path(artifact_dir),
        physics_params=physics_params,
        feature_columns=cols,
        params=params,
        val_predictions=val_predictions,
        val_assets=dm.labelled_assets,
        feature_dtypes={c: dtypes[c] for c in cols},
    )
