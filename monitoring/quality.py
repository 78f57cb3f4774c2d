"""Data-quality checks of a current cohort against its reference: missing, out of range, frozen.

    reference values ─► per column: [min, max] widened by `range_margin` × range,
                        share of "frozen" rows (window slope exactly 0)
    current values   ─► per column: missing share, out-of-range share, frozen share
                     ─► issues (one sentence per problem) ; ok = no issue

Why beside the drift test, not inside it. A dead or stuck sensor is a data
problem to fix at the source, not a reason to retrain (a model retrained on a
frozen sensor learns the fault). The drift verdict drops missing values, so
this check is what notices them. Thresholds are relative to the reference
where a physical sensor can legitimately look odd: a quantised, nearly
constant sensor (FD001 sensor_6) has flat windows in the reference too, so a
sensor only counts as frozen when flat windows are clearly more common than
there.

Works on raw readings (sensor columns; frozen = the same value as the
asset's previous reading) or on window features (`<sensor>_mean` columns;
frozen = `<sensor>_slope` exactly 0, i.e. a flat window).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def _frozen_mask(frame: pd.DataFrame, column: str) -> np.ndarray | None:
    """True where the column did not move (None: cannot tell for this column)."""
    if column.endswith("_mean") and column.replace("_mean", "_slope") in frame.columns:
        return frame[column.replace("_mean", "_slope")].to_numpy(dtype=float) == 0.0
    if "asset_id" in frame.columns and column.startswith("sensor_"):
        values = frame[column].to_numpy(dtype=float)
        same_asset = frame["asset_id"].astype(str).to_numpy()
        out = np.zeros(len(frame), dtype=bool)
        out[1:] = (values[1:] == values[:-1]) & (same_asset[1:] == same_asset[:-1])
        return out
    return None


def data_quality(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    *,
    max_missing_share: float = 0.05,
    range_margin: float = 0.1,
    max_out_of_range_share: float = 0.01,
    frozen_excess: float = 0.2,
) -> dict[str, Any]:
    """Per-column quality figures and a list of issues; `ok` when there is none."""
    per_column: dict[str, dict[str, Any]] = {}
    issues: list[str] = []
    for col in columns:
        if col not in current.columns:
            per_column[col] = {"missing_share": 1.0}
            issues.append(f"{col}: missing from the current data")
            continue
        cur = current[col].to_numpy(dtype=float)
        ref = reference[col].to_numpy(dtype=float) if col in reference.columns else np.array([])
        missing = float(np.isnan(cur).mean()) if len(cur) else 0.0
        entry: dict[str, Any] = {"missing_share": missing}
        if missing > max_missing_share:
            issues.append(f"{col}: {missing:.0%} missing values (> {max_missing_share:.0%})")
        ref = ref[np.isfinite(ref)]
        moving = bool(len(ref)) and float(ref.max()) > float(ref.min())
        present = cur[np.isfinite(cur)]
        if len(ref) and len(present):
            lo, hi = float(ref.min()), float(ref.max())
            pad = range_margin * max(hi - lo, 1e-9 * max(1.0, abs(hi)))
            outside = float(((present < lo - pad) | (present > hi + pad)).mean())
            entry.update(reference_range=[lo, hi], out_of_range_share=outside)
            if outside > max_out_of_range_share:
                issues.append(
                    f"{col}: {outside:.1%} of values outside the reference range "
                    f"[{lo:.4g}, {hi:.4g}] ± {range_margin:.0%}"
                )
        cur_frozen, ref_frozen = _frozen_mask(current, col), _frozen_mask(reference, col)
        if cur_frozen is not None and ref_frozen is not None and len(cur) and moving:
            frozen, baseline = float(cur_frozen.mean()), float(ref_frozen.mean())
            entry.update(frozen_share=frozen, reference_frozen_share=baseline)
            if frozen > baseline + frozen_excess:
                issues.append(
                    f"{col}: frozen (no change) in {frozen:.0%} of rows vs {baseline:.0%} "
                    "in the reference"
                )
        per_column[col] = entry
    return {"ok": not issues, "issues": issues, "columns": per_column}
