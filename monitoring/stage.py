"""Life-stage estimate for drift matching when no champion model scores the rows.

    reference features + RUL labels (run-to-failure assets) ─► ridge fit ─► stage(x) ≈ capped RUL
    no labels in the reference ────────────────────────────► stage = cycle (weak, flagged)

Why. Remaining life is the stage variable that makes test and training
cohorts of one fleet comparable, and cycle is a weak substitute (at equal
cycle, the training cohort holds degraded last cycles a truncated cohort never
shows: monitoring/drift.py). The
champion's predicted RUL is the best estimate; when there is none (a raw
file compared with another raw file, a fresh install), a ridge regression of
the capped RUL on the reference's own window features is the next best: it is
fitted on the reference only (so it cannot learn the current data's drift),
needs no training run, fits in milliseconds, and is deterministic. Only when
the reference has no run-to-failure assets (no labels at all) do we fall back
to cycle, and the verdict records which stage was used.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def fit_ridge_stage(
    features: pd.DataFrame, rul: np.ndarray, columns: list[str], *, cap: float = 125.0,
    l2: float = 1.0,
) -> Callable[[pd.DataFrame], np.ndarray]:
    """A function rows -> estimated capped RUL, fitted by ridge on standardised columns."""
    x = features[columns].to_numpy(dtype=float)
    y = np.minimum(np.asarray(rul, dtype=float), cap)
    ok = np.isfinite(x).all(axis=1) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(y) < len(columns) + 2:
        raise ValueError(f"too few labelled reference rows ({len(y)}) to fit a stage model")
    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    xs = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    penalty = l2 * np.eye(xs.shape[1])
    penalty[-1, -1] = 0.0  # the intercept is not shrunk
    coef = np.linalg.solve(xs.T @ xs + penalty, xs.T @ y)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        z = (frame[columns].to_numpy(dtype=float) - mu) / sd
        return np.clip(np.column_stack([z, np.ones(len(z))]) @ coef, 0.0, cap)

    return predict
