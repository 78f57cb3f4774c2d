"""Evaluate a predictor on a labelled frame and decide the promotion gate.

    predictor + frame[asset_id, cycle, rul (uncapped), *features]
        │ predict (all rows), target = min(rul, cap)
        ▼
    metrics: rmse, mae, phm08_score (capped target), coverage (uncapped RUL), width,
             brier (p_fail at horizon, uncapped RUL),
             physics_time_residual (RMS of rul(t) - rul(t+dt) - dt, non-plateau pairs),
             last_* (one prediction per asset at its last cycle: the C-MAPSS test protocol)
        │
        ▼
    passes_gate(metrics, baseline) ──► (ok, reasons)   baseline = constant-mean predictor RMSE
                                                       (or another model's metrics)

Why a constant predictor as the floor: a model that cannot beat "every asset has the
mean RUL" has learned nothing from the sensors, whatever its absolute RMSE looks like.
"""

from __future__ import annotations

import numpy as np

from training import metrics as M


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
    r = pred[:-1] - pred[1:] - (cycle[1:] - cycle[:-1])
    res["physics_time_residual"] = float(np.sqrt(np.mean(r[pair] ** 2))) if pair.any() else 0.0
    # One prediction per asset at its last observed cycle (C-MAPSS test protocol).
    last = np.r_[asset[1:] != asset[:-1], True]
    res["last_rmse"] = M.rmse(y[last], pred[last])
    res["last_phm08_score"] = M.phm08_score(y[last], pred[last])
    return res


def passes_gate(metrics: dict, baseline, settings) -> tuple[bool, list[str]]:
    """Gate for `challenger`: RMSE <= ratio * baseline RMSE (settings.training.gate_*).

    Interval coverage is reported as a reason ("warning: ..." when more than 0.1 below the
    nominal level) but does not block: with a handful of held-out assets the
    leave-one-asset-out coverage is too noisy to veto a model on its own; reviewers see it.

    `baseline` is a float (a constant predictor's RMSE on the same rows) or a metrics dict
    with "rmse" (e.g. the current champion evaluated on the same rows). Metric keys may carry a
    "val_" prefix (as in FitResult.metrics). Returns (passed, human-readable reasons).
    """

    def get(d: dict, key: str):
        return d.get(key, d.get(f"val_{key}"))

    ratio = float(settings.training.gate_max_rmse_ratio_to_constant)
    base = float(baseline) if not isinstance(baseline, dict) else get(baseline, "rmse")
    rmse = get(metrics, "rmse")
    reasons: list[str] = []
    ok = True
    if rmse is None or base is None or not np.isfinite(rmse):
        return False, ["rmse or baseline rmse missing / not finite"]
    limit = ratio * float(base)
    if rmse <= limit:
        reasons.append(f"rmse {rmse:.2f} <= {ratio:g} x baseline {base:.2f} = {limit:.2f}")
    else:
        ok = False
        reasons.append(f"rmse {rmse:.2f} > {ratio:g} x baseline {base:.2f} = {limit:.2f}")
    cov = get(metrics, "coverage")
    level = float(settings.training.interval_level)
    if cov is not None and np.isfinite(cov):
        if cov >= level - 0.1:
            reasons.append(f"coverage {cov:.3f} >= {level - 0.1:.2f}")
        else:
            reasons.append(
                f"warning: coverage {cov:.3f} < {level - 0.1:.2f} (intervals may be miscalibrated)"
            )
    return ok, reasons
