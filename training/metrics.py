"""Point and interval metrics of RUL predictions (pure numpy, no torch).

    y_true, y_pred ──► rmse, mae, phm08_score          (point accuracy)
    y_true, lower, upper ──► interval_coverage, mean_width   (calibration of intervals)
    event, p ──► brier_score                            (probability of failure)

The PHM08 score (Saxena et al., "Damage propagation modeling for aircraft engine
run-to-failure simulation", PHM 2008) is asymmetric on purpose: with d = pred - true,
late predictions (d >= 0, the model says the asset lives longer than it does) are
penalised with exp(d/10) - 1, early ones with exp(-d/13) - 1, because a missed failure
costs more than an early maintenance visit. It is a *sum* over units, so it grows with
the number of units; compare it only on the same evaluation set.
"""

from __future__ import annotations

import numpy as np


def _as_1d(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).reshape(-1)


def rmse(y_true, y_pred) -> float:
    """Root mean squared error."""
    d = _as_1d(y_pred) - _as_1d(y_true)
    return float(np.sqrt(np.mean(d * d))) if d.size else float("nan")


def mae(y_true, y_pred) -> float:
    """Mean absolute error."""
    d = _as_1d(y_pred) - _as_1d(y_true)
    return float(np.mean(np.abs(d))) if d.size else float("nan")


def phm08_terms(y_true, y_pred) -> np.ndarray:
    """Per prediction, its PHM08 term: exp(-d/13) - 1 (d < 0) or exp(d/10) - 1 (d >= 0),
    d = pred - true (training.truncation weights them per unit)."""
    d = _as_1d(y_pred) - _as_1d(y_true)
    return np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)


def phm08_score(y_true, y_pred) -> float:
    """PHM08 score: the sum of `phm08_terms`. Lower is better; 0 for perfect predictions."""
    return float(np.sum(phm08_terms(y_true, y_pred)))


def interval_coverage(y_true, lower, upper) -> float:
    """Share of true values inside the closed interval [lower, upper]."""
    y = _as_1d(y_true)
    if not y.size:
        return float("nan")
    return float(np.mean((y >= _as_1d(lower)) & (y <= _as_1d(upper))))


def mean_width(lower, upper) -> float:
    """Mean interval width (cycles); coverage is only meaningful next to the width."""
    w = _as_1d(upper) - _as_1d(lower)
    return float(np.mean(w)) if w.size else float("nan")


def brier_score(event, prob) -> float:
    """Mean squared error of a probability forecast against a 0/1 event."""
    e = _as_1d(event)
    return float(np.mean((_as_1d(prob) - e) ** 2)) if e.size else float("nan")
