"""Validation that mirrors deployment: run-to-failure units scored at random cuts of life.

    held-out run-to-failure unit u, life T_u (its failure cycle)
        │ a cut c drawn uniformly among u's rows with c / T_u in CUT_LIFE_SHARE
        │ (what a unit still in service looks like: seen up to c, not beyond)
        ▼
    its out-of-fold prediction at c ─► error against the true, *uncapped* RUL T_u - c
        ▼
    expected over the cut, each unit weighted equally:
        cut_weights(frame) = 1 / (rows of u inside the share)   (0 outside it)

Why: a test unit (C-MAPSS test files, an asset in service) is seen once, somewhere in its
life, and scored on the RUL it really had, not on the target capped at the plateau. The
all-rows validation weights every row of a long life as much as a short life's, counts
the easy plateau rows and scores against the capped target, so it can rank two models
the opposite way from the test (issue #16: 7.00 vs 8.35 on validation, 12.03 vs 11.11 on
test). Every feature row is causal (features.transforms: a row uses only readings up to
its own), so a unit's row at cycle c is exactly what that unit truncated at c would show
at its last reading.

Why weights instead of drawing cuts: the weighted mean over every row inside the share is
the *expected* error of a uniformly random cut, without the draw's noise (a draw of one
cut per unit on 20 units would pick the epoch on 20 numbers).

Why CUT_LIFE_SHARE = (0.3, 0.95): the share of life at which the project cuts every
in-service fleet it simulates (features.sources.simulator.simulate_live, the pump
benchmark), chosen before any model was scored on it; a unit is rarely judged in the
first third of its life, where no model can tell it from a new one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from training import metrics as M

#: Cuts are drawn uniformly among a unit's rows whose share of life lies in this range.
CUT_LIFE_SHARE: tuple[float, float] = (0.3, 0.95)
#: Edges of the true-RUL bands the coverage is also reported in, as shares of the target
#: cap: a pooled 0.90 that covers early life and misses late life is not calibrated where it
#: matters. On C-MAPSS (cap 125 cycles) they are the usual 0-25, 25-50, 50-125, 125+; on a
#: pump capped at 8 h, 0-1.6, 1.6-3.2, 3.2-8, 8+ h: the same stages of a life in any unit.
BAND_EDGES_OF_CAP: tuple[float, ...] = (0.0, 0.2, 0.4, 1.0, float("inf"))


def coverage_bands(cap: float) -> list[tuple[float, float]]:
    """The (low, high) true-RUL bands of a target capped at `cap`."""
    edges = [e * float(cap) for e in BAND_EDGES_OF_CAP]
    return list(zip(edges[:-1], edges[1:], strict=True))


def cut_weights(asset_id, cycle, rul, per_cycle: float = 1.0,
                share: tuple[float, float] = CUT_LIFE_SHARE) -> np.ndarray:
    """Per row, its weight in the cut validation: 1 / (rows of its unit inside `share`),
    0 outside, so every unit sums to 1. `rul` is the uncapped RUL (NaN = unlabelled: 0);
    a unit's life is its cycle + RUL / `per_cycle` (constant along a run-to-failure life).
    A unit with no row inside the share (a very short history) gets its last row."""
    asset = np.asarray(asset_id).astype(str)
    cycle = np.asarray(cycle, dtype=np.float64)
    rul = np.asarray(rul, dtype=np.float64)
    life = cycle + rul / per_cycle
    frac = np.divide(cycle, life, out=np.full_like(cycle, np.nan), where=life > 0)
    inside = np.isfinite(frac) & (frac >= share[0]) & (frac <= share[1])
    by_unit = pd.DataFrame({"inside": inside, "cycle": np.where(np.isfinite(rul), cycle, -1)})
    grouped = by_unit.groupby(asset)
    counts = grouped["inside"].transform("sum").to_numpy()
    last = np.isfinite(rul) & (cycle == grouped["cycle"].transform("max").to_numpy())
    w = np.where(inside, 1.0 / np.maximum(counts, 1), 0.0)
    return np.where((counts == 0) & last, 1.0, w)


def weighted_rmse(err, w) -> float:
    """RMSE of `err` with row weights `w` (NaN without weight)."""
    err, w = np.asarray(err, float), np.asarray(w, float)
    return float(np.sqrt(np.sum(w * err * err) / np.sum(w))) if w.sum() > 0 else float("nan")


def cut_metrics(asset_id, true_rul, pred, lower, upper, weights, cap: float,
                phm08: bool = True) -> dict[str, float]:
    """Cut-validation metrics (each unit weighted equally, truth uncapped): rmse, mae,
    phm08 score per unit (`phm08`: a cycles metric), coverage and width, coverage per
    band of `coverage_bands(cap)`, and the share of units whose interval misses at most
    cuts."""
    y, p = np.asarray(true_rul, float), np.asarray(pred, float)
    lo, hi, w = np.asarray(lower, float), np.asarray(upper, float), np.asarray(weights, float)
    keep = w > 0
    unit = np.asarray(asset_id).astype(str)[keep]
    y, p, lo, hi, w = y[keep], p[keep], lo[keep], hi[keep], w[keep]
    err = p - y
    covered = ((y >= lo) & (y <= hi)).astype(float)
    n_units = float(w.sum())
    out = {
        "rmse": weighted_rmse(err, w),
        "mae": float(np.sum(w * np.abs(err)) / n_units),
        "coverage": float(np.sum(w * covered) / n_units),
        "width": float(np.sum(w * np.where(np.isfinite(hi), hi - lo, np.nan)) / n_units),
        "n_units": n_units,
    }
    if phm08:
        out["phm08_per_unit"] = float(np.sum(w * M.phm08_terms(y, p)) / n_units)
    out.update(band_coverage(y, lo, hi, cap, w))
    out["units_missed"] = units_missed(unit, covered, w)
    return out


def units_missed(asset_id, covered, w) -> float:
    """Share of units whose interval misses the truth at most of their cuts (their weighted
    coverage below one half). One row per unit (a test set): the share of missed units."""
    if not len(w):
        return float("nan")
    per_unit = pd.Series(np.asarray(w) * np.asarray(covered)).groupby(
        np.asarray(asset_id).astype(str)).sum() / pd.Series(np.asarray(w)).groupby(
        np.asarray(asset_id).astype(str)).sum()
    return float((per_unit < 0.5).mean())


def band_names(cap: float) -> list[str]:
    """The keys of `band_coverage` for a target capped at `cap`, in band order."""
    return [f"coverage_{a:g}-{b:g}" for a, b in coverage_bands(cap)]


def band_coverage(y, lo, hi, cap: float, w=None) -> dict[str, float]:
    """Coverage per true-RUL band of `coverage_bands(cap)` ("coverage_0-25", ...,
    "coverage_125-inf" at cap 125; NaN for an empty band), each row weighted by `w`
    (default 1)."""
    y, lo, hi = np.asarray(y, float), np.asarray(lo, float), np.asarray(hi, float)
    w = np.ones_like(y) if w is None else np.asarray(w, float)
    covered = (y >= lo) & (y <= hi)
    out = {}
    # names like "coverage_125-inf": MLflow allows no "+" in a metric name
    for (a, b), name in zip(coverage_bands(cap), band_names(cap), strict=True):
        m = (y >= a) & (y < b)
        out[name] = float(np.sum(w[m] * covered[m]) / w[m].sum()) if w[m].sum() else float("nan")
    return out
