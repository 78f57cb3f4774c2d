"""The drift verdict: per-sensor tests at equal life stage, assets as the unit, corrected.

    reference rows ─┐   stage bins (quantiles of the reference stage)
                    ├─► z = (x - ref mean of its bin) / ref std of its bin     per column
    current rows ───┘        │  current rows outside the reference's stage range → unmatched
                             ▼
             per asset: mean z  (one number per asset and column)
                             ▼
             Welch t-test, current assets vs reference assets, per column
             drifted ⇔ p < alpha / m (Bonferroni over m columns) and |shift| >= min_shift
             drift   ⇔ any column drifted          share = drifted / m

Why not a share of drifted columns (Evidently's dataset rule). A sensor bias
of one noise std on 3 sensors is 3 of ~18 monitored columns: it can never
reach a 50% share, and a share threshold low enough to catch it alarms on
noise. The question asked is "did *any* sensor change at equal life stage?"
— a family of m tests, so the per-column level is alpha/m (Bonferroni: the
chance of one false alarm over all columns is <= alpha, whatever their
correlation). alpha defaults to 0.01, so an unchanged fleet alarms in at most
~1 check in 100.

Why assets, not rows, are the sample. Window features of consecutive cycles
of one asset overlap (30-cycle windows) and every asset carries its own
manufacturing offset; a row-level K-S or Wasserstein test treats 10,000 rows
of 100 engines as 10,000 independent draws and flags differences between
*engines* as drift (the reason the raw Evidently preset flags nearly every
FD001 column). Averaging each asset's standardised residuals gives one roughly
independent number per asset, and a Welch t-test on those has the right size.

Why residuals within stage bins. Comparing like with like: a reading is
compared with reference readings at the same life stage (monitoring/drift.py's
docstring says why RUL is the stage variable that matters). Standardising
within the bin removes the ageing trend, so current and reference can be at
any mix of stages. `min_shift` (in within-stage std units) keeps a very large
fleet from alarming on a difference too small to matter.

What that buys (`twinops benchmark drift`; figures in docs/benchmarks.md#drift):
C-MAPSS FD001's test and training units, one fleet at different ages, show no
drift once matched on stage and most columns drifting without a stage; on the
simulator a 1-std bias on 3 sensors and a new regime alarm in every trial,
while an undrifted fleet rarely does. Where a false alarm appears it is on
sensor_9, which carries the largest unit-to-unit spread: matching on an
*estimated* stage leaves a small bias there. Biased sensors land far past the
threshold, so alpha could be lowered if false alarms cost more.

Pure numpy/scipy, no Evidently: this is the part that must be fast (10k
rows in milliseconds) and exact; Evidently renders the report beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

METHOD = "welch_t_on_asset_mean_stage_residuals"


@dataclass(frozen=True)
class StageTest:
    drift: bool
    share: float
    #: column -> {statistic (p-value), threshold (alpha/m), shift, method, drifted}
    columns: dict[str, dict[str, Any]]
    n_reference_assets: int
    n_current_assets: int
    n_current_rows: int
    unmatched_share: float
    skipped_columns: list[str]
    #: Why the verdict is what it is when no per-column test could run.
    reason: str = ""
    #: Edges of the life-stage bins the test used (quantiles of the reference stage);
    #: the Evidently report renders the rows of exactly these bins (monitoring/check.py).
    bin_edges: tuple[float, ...] = ()


def _bin_edges(stage: np.ndarray, n_bins: int) -> np.ndarray:
    edges = np.unique(np.nanquantile(stage, np.linspace(0.0, 1.0, n_bins + 1)))
    return edges if len(edges) > 1 else np.array([edges[0], edges[0]])


def bin_index(stage: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value; -1 outside [edges[0], edges[-1]] (a stage the reference lacks)."""
    stage, edges = np.asarray(stage, dtype=float), np.asarray(edges, dtype=float)
    idx = np.clip(np.searchsorted(edges, stage, side="right") - 1, 0, len(edges) - 2)
    outside = (stage < edges[0]) | (stage > edges[-1]) | np.isnan(stage)
    return np.where(outside, -1, idx)


def _asset_means(z: np.ndarray, assets: np.ndarray) -> np.ndarray:
    """Mean of z per asset (rows: assets), ignoring NaN."""
    codes, inverse = np.unique(assets, return_inverse=True)
    ok = ~np.isnan(z)
    sums = np.zeros((len(codes), z.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, inverse, np.where(ok, z, 0.0))
    np.add.at(counts, inverse, ok)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts


def stage_matched_test(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    stage_column: str,
    *,
    asset_column: str = "asset_id",
    n_bins: int = 10,
    alpha: float = 0.01,
    min_shift: float = 0.25,
) -> StageTest:
    """Per-column drift at equal life stage; see the module docstring for the rule."""
    from scipy import stats

    ref_stage = reference[stage_column].to_numpy(dtype=float)
    cur_stage = current[stage_column].to_numpy(dtype=float)
    edges = _bin_edges(ref_stage, n_bins)
    ref_bin = bin_index(ref_stage, edges)
    cur_bin = bin_index(cur_stage, edges)
    tested_bins = tuple(float(e) for e in edges)
    matched = cur_bin >= 0
    unmatched_share = float(1.0 - matched.mean()) if len(cur_bin) else 0.0
    if not matched.any():
        # The reference runs to failure, so it spans every real life stage: a cohort
        # that lands entirely outside it is one the stage estimate (the model) has
        # never seen — a new operating regime does exactly this. That is drift, and
        # saying so beats failing the check.
        return StageTest(
            drift=bool(len(cur_bin)), share=1.0 if len(cur_bin) else 0.0, columns={},
            n_reference_assets=int(reference[asset_column].nunique()),
            n_current_assets=int(current[asset_column].nunique()), n_current_rows=0,
            unmatched_share=unmatched_share, skipped_columns=list(columns), bin_edges=tested_bins,
            reason=f"no current row lies in a life stage ({stage_column}) the reference "
                   "has: the current data is outside everything the model was trained on")

    ref_x = reference[columns].to_numpy(dtype=float)
    cur_x = current[columns].to_numpy(dtype=float)[matched]
    cur_bin = cur_bin[matched]
    n_b = len(edges) - 1
    mean = np.full((n_b, len(columns)), np.nan)
    std = np.full_like(mean, np.nan)
    for b in range(n_b):
        rows = ref_x[ref_bin == b]
        if len(rows) > 1:
            mean[b] = np.nanmean(rows, axis=0)
            std[b] = np.nanstd(rows, axis=0, ddof=1)
    overall = np.nanstd(ref_x, axis=0, ddof=1)
    # Physically constant sensors still wobble in the last bits of a window mean
    # (14.62 averaged 30 times): relative spread below 1e-8 counts as constant.
    level = np.maximum(1.0, np.abs(np.nanmean(ref_x, axis=0)))
    overall = np.where(overall > 1e-8 * level, overall, 0.0)
    # A bin where a column is flat (quantised sensors) borrows the column's overall spread.
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, overall)
    skipped = [c for c, s in zip(columns, overall, strict=True) if not s > 0]
    keep = np.array([c not in skipped for c in columns])
    ref_x, cur_x = ref_x[:, keep], cur_x[:, keep]
    mean, std = mean[:, keep], std[:, keep]
    with np.errstate(invalid="ignore", divide="ignore"):
        z_ref = (ref_x - mean[ref_bin]) / std[ref_bin]
        z_cur = (cur_x - mean[cur_bin]) / std[cur_bin]
    a_ref = _asset_means(z_ref, reference[asset_column].astype(str).to_numpy())
    a_cur = _asset_means(z_cur, current[asset_column].astype(str).to_numpy()[matched])

    tested = [c for c in columns if c not in skipped]
    threshold = alpha / max(len(tested), 1)
    result: dict[str, dict[str, Any]] = {}
    for j, col in enumerate(tested):
        r, c = a_ref[:, j], a_cur[:, j]
        r, c = r[~np.isnan(r)], c[~np.isnan(c)]
        if len(r) < 2 or len(c) < 2:
            p, shift = float("nan"), float("nan")
        else:
            p = _welch_p(c, r, stats)
            shift = float(c.mean() - r.mean())
        drifted = bool(p < threshold and abs(shift) >= min_shift)
        result[col] = {
            "statistic": p,
            "threshold": threshold,
            "shift": shift,
            "method": METHOD,
            "drifted": drifted,
        }
    n_drifted = sum(v["drifted"] for v in result.values())
    return StageTest(
        drift=n_drifted > 0,
        share=n_drifted / max(len(result), 1),
        columns=result,
        n_reference_assets=len(a_ref),
        n_current_assets=len(a_cur),
        n_current_rows=int(matched.sum()),
        unmatched_share=unmatched_share,
        skipped_columns=skipped,
        bin_edges=tested_bins,
    )


def _welch_p(current: np.ndarray, reference: np.ndarray, stats) -> float:
    """Welch's t-test p-value of two samples of asset means.

    A sensor whose asset means are all but equal on both sides (a near-constant sensor,
    which data_quality reports as frozen) makes scipy warn of precision loss: the test has
    nothing to tell there, and its p-value (about 1, or NaN) never flags drift.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss", RuntimeWarning)
        return float(stats.ttest_ind(current, reference, equal_var=False).pvalue)
