"""Realized RUL errors of past predictions, from ground-truth failure feedback.

    prediction log (asset_id, logged_at, model_version, rul, features.cycle)
    events (failure at cycle T, via `twinops feedback` / POST /feedback) ─► next failure ≥ t
        ─► true RUL at a prediction made at cycle t = min(T - t, rul_cap)
        ─► error = predicted - true         (realized_errors)
        ─► RMSE per model version per time bucket (rmse_trend)
        ─► {version, n, rmse_first, rmse_latest} of the serving version (error_facts) ─► policy

Why the cap: the model is trained on the piecewise-linear target capped at
`training.rul_cap` (the C-MAPSS protocol): early in life "125" is the right
answer for any true RUL above it, so errors are measured against the capped
truth; the uncapped error is kept as well for people to read.

Why the cycle (not the log time): a failure is a point on the asset's age
axis, and the prediction's features carry the cycle they were computed at;
clocks of plant historians and of the service need not agree. Predictions of
the same feature state repeated many times count once (distinct states), the
same rule as the drift check. Predictions whose asset has no later failure
are unknown (still in service), not errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from features.settings import Settings

ERROR_COLUMNS = ["asset_id", "logged_at", "model_version", "cycle", "failure_cycle",
                 "rul", "true_rul", "true_rul_uncapped", "error"]


def join_truth(log: pd.DataFrame, events: pd.DataFrame, cap: float | None) -> pd.DataFrame:
    """Predictions with the true RUL from each asset's next failure at or after the cycle."""
    import pandas as pd

    failures = events[events["event"].astype(str) == "failure"][["asset_id", "cycle"]]
    if not len(log) or not len(failures) or "cycle" not in log.columns:
        return pd.DataFrame(columns=ERROR_COLUMNS)
    left = log[["asset_id", "logged_at", "model_version", "cycle", "rul"]].copy()
    left = left.dropna(subset=["cycle", "rul"])
    left["asset_id"] = left["asset_id"].astype(str)
    left["cycle"] = left["cycle"].astype("int64")
    right = failures.rename(columns={"cycle": "failure_cycle"}).astype(
        {"asset_id": str, "failure_cycle": "int64"})
    merged = pd.merge_asof(
        left.sort_values("cycle", kind="mergesort"),
        right.sort_values("failure_cycle", kind="mergesort"),
        left_on="cycle", right_on="failure_cycle", by="asset_id", direction="forward",
    ).dropna(subset=["failure_cycle"])
    merged["true_rul_uncapped"] = (merged["failure_cycle"] - merged["cycle"]).astype(float)
    truth = merged["true_rul_uncapped"]
    merged["true_rul"] = truth.clip(upper=cap) if cap is not None else truth
    merged["error"] = merged["rul"] - merged["true_rul"]
    return merged.sort_values("logged_at", kind="mergesort")[ERROR_COLUMNS].reset_index(drop=True)


def realized_errors(settings: Settings) -> pd.DataFrame:
    """Realized errors of every logged prediction whose truth is known by now."""
    from features.datastore import load_events
    from features.prediction_log import PredictionLog
    from monitoring.drift import distinct_states

    if not settings.prediction_log_path.exists():
        return join_truth(_empty_log(), load_events(settings), settings.rul_cap)
    log = PredictionLog(settings.prediction_log_path)
    try:
        states = distinct_states(log.read(model_name=settings.model_name),
                                 keys=("asset_id", "cycle", "model_version"))
    finally:
        log.close()
    return join_truth(states, load_events(settings), settings.rul_cap)


def _empty_log() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=["asset_id", "logged_at", "model_version", "cycle", "rul"])


def rmse_trend(errors: pd.DataFrame, bucket: str = "1D") -> list[dict[str, Any]]:
    """RMSE per (model version, time bucket of the prediction), oldest first."""
    if not len(errors):
        return []
    frame = errors.assign(bucket=errors["logged_at"].dt.floor(bucket), sq=errors["error"] ** 2)
    rows = []
    for (version, start), group in frame.groupby(["model_version", "bucket"], sort=True):
        rows.append({
            "model_version": str(version),
            "bucket_start": start.isoformat(),
            "n": len(group),
            "rmse": float(np.sqrt(group["sq"].mean())),
            "bias": float(group["error"].mean()),
        })
    return sorted(rows, key=lambda r: (r["bucket_start"], r["model_version"]))


def error_facts(trend: list[dict[str, Any]], version: str | None) -> dict[str, Any] | None:
    """What the retrain policy needs about `version`: n, first and latest bucket RMSE."""
    mine = [r for r in trend if version is not None and r["model_version"] == str(version)]
    if not mine:
        return None
    return {
        "version": str(version),
        "n": sum(r["n"] for r in mine),
        "rmse_first": mine[0]["rmse"],
        "rmse_latest": mine[-1]["rmse"],
    }
