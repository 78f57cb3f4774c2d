"""Evaluate a predictor on a labelled frame: the metrics training and the review gates read.

    predictor + frame[asset_id, cycle, rul (uncapped), *features]
        │ predict (all rows), target = min(rul, cap)
        ▼
    metrics: rmse, mae, phm08_score (capped target), coverage (uncapped RUL), width,
             brier (p_fail at horizon, uncapped RUL),
             physics_time_residual (RMS of rul(t) - rul(t+dt) - dt, non-plateau pairs),
             last_* (one prediction per asset at its last cycle: the C-MAPSS test protocol),
             cut_* (random cuts of each unit's life, uncapped RUL: training.truncation; what
             epochs, candidates and the review gates are chosen on)
    constant_rmse(train mean, frame) ─► the floor's baseline (pipelines.gates.floor_gate)
"""

from __future__ import annotations

import numpy as np

from training import metrics as M
from training.truncation import cut_metrics, cut_weights


def _capped_target(frame, cap: float) -> np.ndarray:
    return np.minimum(frame["rul"].to_numpy(dtype=np.float64), cap)


def constant_rmse(train_target_mean: float, frame, cap: float) -> float:
    """RMSE of predicting `train_target_mean` (capped scale) for every row of `frame`."""
    y = _capped_target(frame, cap)
    return M.rmse(y, np.full_like(y, train_target_mean))


def evaluate(
    predictor, frame, horizon: int = 30, level: float | None = None, out_of_fold: bool = False
) -> dict[str, float]:
    """Metrics of `predictor` on every row of a labelled `frame` (capped target, like training).

    `out_of_fold`: training assets are predicted by the members that never saw them.
    """
    cap = float(predictor.spec.rul_cap)
    df = frame.sort_values(["asset_id", "cycle"], kind="stable")
    out = predictor.predict(df, horizon=horizon, level=level, out_of_fold=out_of_fold)
    y = _capped_target(df, cap)
    pred = out["rul"].to_numpy()
    lo, hi = out["rul_lower"].to_numpy(), out["rul_upper"].to_numpy()
    res: dict[str, float] = {
        "rmse": M.rmse(y, pred),
        "mae": M.mae(y, pred),
        "phm08_score": M.phm08_score(y, pred),
        # intervals are calibrated on the uncapped RUL (training.conformal): score them on it
        "coverage": M.interval_coverage(df["rul"].to_numpy(dtype=np.float64), lo, hi),
        "width": M.mean_width(lo, hi),
        "brier": M.brier_score(df["rul"].to_numpy() <= horizon, out["p_fail"].to_numpy()),
        "n_rows": float(len(df)),
    }
    # (a) on the predictions: consecutive rows of one asset, true RUL in the linear regime.
    asset = df["asset_id"].astype(str).to_numpy()
    cycle = df["cycle"].to_numpy(dtype=np.float64)
    raw = df["rul"].to_numpy(dtype=np.float64)
    pair = (asset[1:] == asset[:-1]) & (cycle[1:] > cycle[:-1]) & (raw[:-1] <= cap)
    per_cycle = float(getattr(predictor.spec, "rul_per_cycle", 1.0))
    r = pred[:-1] - pred[1:] - (cycle[1:] - cycle[:-1]) * per_cycle
    res["physics_time_residual"] = float(np.sqrt(np.mean(r[pair] ** 2))) if pair.any() else 0.0
    # One prediction per asset at its last observed cycle (C-MAPSS test protocol).
    last = np.r_[asset[1:] != asset[:-1], True]
    res["last_rmse"] = M.rmse(y[last], pred[last])
    res["last_phm08_score"] = M.phm08_score(y[last], pred[last])
    w = cut_weights(asset, cycle, raw, per_cycle)
    cut = cut_metrics(asset, raw, pred, lo, hi, w, cap)
    res.update({f"cut_{k}": v for k, v in cut.items()})
    return res
