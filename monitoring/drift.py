"""Life-stage-aware data drift with Evidently 0.7.

    reference (e.g. training features) ─┐
                                        ├─► match_life_stage(stage_column) ─► matched reference
    current (e.g. prediction log) ──────┘              │
                                                       ▼
              Evidently Report([DataDriftPreset]).run(current, matched reference)
                                                       │
                            snapshot ─┬─► drift_report.html / drift_report.json (atomic)
                                      └─► parse_snapshot ─► DriftResult(drift, share, columns)

Why life-stage matching. A fleet that ages is not drifting. Sensor
distributions move as assets degrade, so a cohort that is younger or older
than the reference looks "drifted" although nothing about the plant or the
sensors changed. A drift alarm must compare like with like.

C-MAPSS FD001 shows it: its test units are the same fleet as its training
units, only truncated before failure, yet nearly every sensor "drifts" between
the two until rows are matched on remaining life; matched on cycle, most still
do (figures: docs/experiments.md#drift).

Cycle is a weak stage variable: at equal cycle the run-to-failure training
data holds the last, most degraded cycles of short-lived units, which a
truncated cohort never shows. Remaining life is the stage that matters, so
in production match on the model's predicted RUL or health (logged with
every prediction; the reference gets the same model's predictions), and use
`cycle` only when nothing better exists.

How. Given `stage_column` (the cycle, or a predicted health / RUL, anything
that says "how far along its life this row is"), the current cohort's stage
distribution is cut into quantile bins (`n_bins`), the reference rows are put
in the same bins, and reference rows are drawn per bin in the current
proportions (deterministic seed). The drift test then runs on that matched
reference: what remains is a change *at equal life stage* — a sensor bias,
a new operating regime, a replaced component — which is what should trigger a
retrain. Current rows whose stage the reference never saw are kept (they
are real), and their share is reported as `unmatched_share`.

Reading the verdict. Evidently 0.7's DataDriftPreset yields one
`DriftedColumnsCount` metric (value {count, share}) and one `ValueDrift`
metric per column (value = the drift score; config = column, method,
threshold). With `include_tests=True` each ValueDrift also gets a test
whose status is FAIL when that column drifted; `parse_snapshot` reads those
statuses (authoritative: the stat test itself decides), and falls back to
the method's direction (p-value methods drift when score < threshold,
distance methods when score >= threshold). Evidently picks the method per
column: K-S p-value for small numerical samples, normed Wasserstein
distance (default threshold 0.1) when the reference has > 1000 rows; a
`column_threshold` applies to whichever method is chosen, so the default is
None = each method's own default (one number cannot suit both: 0.05, a usual
p-value level, is so small a Wasserstein distance that nearly every sensor
drifts). With thousands of rows a K-S p-value flags differences too small to
matter, which is why Evidently switches to a distance there
(docs/experiments.md#drift).
Dataset drift follows Evidently: share >= share_threshold.

Sample size picks the method, on the *smaller* sample. Evidently chooses by
the reference size alone, so a small current cohort (say 16 assets, one
state each) against a large reference gets the Wasserstein distance, whose
sampling noise alone (about 0.8/sqrt(n) of a standard deviation: ~0.2 at
n = 16) exceeds the 0.1 threshold — nearly every column "drifts" on an
unchanged fleet. So when either sample has fewer than `SMALL_SAMPLE` rows and
no method is forced, the K-S test is used: its p-value accounts for the
sample size.

Where the verdict lives now. `twinops monitor drift` and the monitor flow
take their drift verdict from monitoring/verdict.py (per-sensor tests at
equal life stage with assets as the sample, Bonferroni-corrected: a 1-std
bias on 3 of ~17 sensors can never reach a 50% share, and rows of one asset
are not independent draws). This module renders the stage-matched data with
Evidently for people (HTML + JSON beside the verdict), matched on the
verdict's own stage bins (`stage_edges`) so the report shows the rows that
were tested; its own share-based verdict stays available for direct use.

Evidently takes seconds to import, so it is imported inside the functions.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features import atomic

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class DriftResult:
    """The drift verdict of one report, plus where the report files are."""

    drift: bool
    share: float
    #: column -> {"score", "threshold", "method", "drifted"}
    columns: dict[str, dict[str, Any]]
    html_path: Path | None = None
    json_path: Path | None = None
    n_reference: int = 0
    n_current: int = 0
    stage_column: str | None = None
    #: Share of current rows in life stages the reference does not cover.
    unmatched_share: float = 0.0
    #: Columns left out of the test: all-null in one frame, or one and the same constant in
    #: both (nothing can drift; Evidently's histograms fail on a zero-width range).
    skipped_columns: list[str] = field(default_factory=list)
    #: Life-stage bin edges the matching used when they were given (the verdict's bins).
    stage_bins: tuple[float, ...] = ()

    @property
    def drifted_columns(self) -> list[str]:
        return [c for c, v in self.columns.items() if v["drifted"]]

    def summary(self) -> dict[str, Any]:
        """JSON-ready summary (what the retrain policy and the CLI consume)."""
        out = asdict(self)
        out["html_path"] = str(self.html_path) if self.html_path else None
        out["json_path"] = str(self.json_path) if self.json_path else None
        out["drifted_columns"] = self.drifted_columns
        return out


# ---------------------------------------------------------------------------
# life-stage matching (pure pandas / numpy)
# ---------------------------------------------------------------------------
def _stage_bins(
    reference: pd.DataFrame, current: pd.DataFrame, stage_column: str, n_bins: int
) -> tuple[pd.Series, pd.Series]:
    """Bin labels of each row of both frames, bins defined on the current data."""
    import numpy as np
    import pandas as pd

    cur = current[stage_column]
    ref = reference[stage_column]
    if not pd.api.types.is_numeric_dtype(cur):  # categorical stage: a bin per category
        return ref.astype("string"), cur.astype("string")
    edges = np.unique(np.nanquantile(cur.to_numpy(dtype=float), np.linspace(0, 1, n_bins + 1)))
    if len(edges) == 1:  # constant stage: a single bin [v, v]
        edges = np.array([edges[0], edges[0]])
    # Right-closed bins with the lowest edge included; reference rows outside
    # the current range get NaN: a life stage the current cohort is not in.
    cut = dict(bins=edges, include_lowest=True, labels=False, duplicates="drop")
    return pd.cut(ref, **cut), pd.cut(cur, **cut)


def _given_bins(
    reference: pd.DataFrame, current: pd.DataFrame, stage_column: str, edges
) -> tuple[pd.Series, pd.Series]:
    """Bin labels on given edges, with the verdict's rule (monitoring/verdict.bin_index); NaN
    outside them."""
    import numpy as np
    import pandas as pd

    from monitoring.verdict import bin_index

    def labels(frame: pd.DataFrame) -> pd.Series:
        idx = bin_index(frame[stage_column].to_numpy(dtype=float), np.asarray(edges, float))
        return pd.Series(np.where(idx >= 0, idx, np.nan), index=frame.index)

    return labels(reference), labels(current)


def match_life_stage(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    stage_column: str,
    *,
    n_bins: int = 20,
    seed: int = 0,
    min_rows: int = 200,
    min_rows_per_bin: int = 10,
    edges: tuple[float, ...] | None = None,
) -> tuple[pd.DataFrame, float]:
    """Resample `reference` so its life-stage distribution matches `current`.

    Bins are quantiles of the current stage (`n_bins`, fewer for a small cohort), or
    `edges` when given: the bins a verdict tested, so what is drawn is what it compared.

    Returns (matched_reference, unmatched_share). Per bin b with current share
    p_b and n_b reference rows, draws round(p_b * N) reference rows, with N the
    largest size every bin can supply without replacement (N = min n_b / p_b,
    at most the number of reference rows in range). If that N is below
    `min_rows` the draw is with replacement at N = reference rows in range,
    so a thin bin does not shrink the whole test.
    """
    import numpy as np

    if stage_column not in reference.columns or stage_column not in current.columns:
        raise KeyError(f"stage column {stage_column!r} missing from reference or current")
    if edges is not None:
        ref_bin, cur_bin = _given_bins(reference, current, stage_column, edges)
    else:
        # Fewer bins for a small cohort: a quantile bin of 2 rows is noise.
        n_bins = max(1, min(n_bins, len(current) // min_rows_per_bin))
        ref_bin, cur_bin = _stage_bins(reference, current, stage_column, n_bins)
    cur_counts = cur_bin.value_counts(dropna=True)
    cur_share = cur_counts / cur_counts.sum()
    ref_counts = ref_bin.value_counts(dropna=True)
    covered = [b for b in cur_share.index if ref_counts.get(b, 0) > 0]
    unmatched_share = float(cur_counts.drop(covered).sum() / cur_counts.sum())
    if not covered:
        raise ValueError(
            f"reference has no rows in the life stages of the current data ({stage_column})"
        )
    p = cur_share[covered] / cur_share[covered].sum()  # renormalise over covered bins
    in_range = int(ref_counts[covered].sum())
    n_total = int(min(in_range, math.floor(min(ref_counts[b] / p[b] for b in covered))))
    replace = n_total < min(min_rows, in_range)
    if replace:
        n_total = in_range

    rng = np.random.default_rng(seed)
    positions = np.arange(len(reference))
    ref_bin_arr = ref_bin.to_numpy()
    picked: list[np.ndarray] = []
    for b in sorted(covered):
        members = positions[ref_bin_arr == b]
        k = int(round(p[b] * n_total))
        if k == 0:
            continue
        picked.append(rng.choice(members, size=k, replace=replace or k > len(members)))
    idx = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)
    return reference.iloc[idx].reset_index(drop=True), unmatched_share


#: Below this many rows in either frame, use a test with a p-value (K-S) instead of a distance.
SMALL_SAMPLE = 1000


def _constant_in_both(reference: pd.Series, current: pd.Series) -> bool:
    """True when a numeric column holds one value (to float precision) in both frames."""
    import numpy as np
    import pandas as pd

    if not (pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(current)):
        return False
    values = np.concatenate([reference.dropna().to_numpy(float), current.dropna().to_numpy(float)])
    span = float(values.max() - values.min())
    return span <= 1e-9 * max(1.0, float(np.abs(values).max()))


def distinct_states(
    log: pd.DataFrame, keys: tuple[str, ...] = ("asset_id", "feature_timestamp")
) -> pd.DataFrame:
    """One row per asset state from a prediction log (the latest prediction of it).

    The log has a row per *prediction*: an asset scored 40 times on the same
    feature row appears 40 times, which makes a handful of assets look like a
    large, narrow sample and fakes drift. Drift is about the states the fleet
    is in, so deduplicate on (asset, feature timestamp) first. Keys missing
    from the frame are ignored (no key at all: the frame is returned as is).
    """
    present = [k for k in keys if k in log.columns]
    if not present:
        return log
    return log.drop_duplicates(present, keep="last").reset_index(drop=True)


# ---------------------------------------------------------------------------
# Evidently snapshot parsing (pure: works on the snapshot's dict)
# ---------------------------------------------------------------------------
def _drifted_by_direction(method: str | None, score: float, threshold: float | None) -> bool:
    if threshold is None or score is None or (isinstance(score, float) and math.isnan(score)):
        return False
    if method and "p_value" in method:
        return score < threshold
    return score >= threshold


def parse_snapshot(snapshot: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], float | None]:
    """Per-column drift and Evidently's drifted share from `snapshot.dict()`.

    Returns ({column: {score, threshold, method, drifted}}, share or None).
    """
    status_by_metric = {
        t.get("metric_config", {}).get("metric_id"): t.get("status")
        for t in snapshot.get("tests", [])
        if t.get("id") == "drift"
    }
    columns: dict[str, dict[str, Any]] = {}
    share: float | None = None
    for metric in snapshot.get("metrics", []):
        config = metric.get("config", {})
        kind = str(config.get("type", "")).rsplit(":", 1)[-1]
        if kind == "ValueDrift":
            method, threshold = config.get("method"), config.get("threshold")
            score = metric.get("value")
            score = None if score is None else float(score)
            status = status_by_metric.get(metric.get("id"))
            drifted = (
                status == "FAIL"
                if status in ("FAIL", "SUCCESS")
                else _drifted_by_direction(method, score, threshold)
            )
            columns[config["column"]] = {
                "score": score,
                "threshold": threshold,
                "method": method,
                "drifted": bool(drifted),
            }
        elif kind == "DriftedColumnsCount":
            share = float(metric["value"]["share"])
    return columns, share


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------
def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    columns: list[str],
    out_dir: str | os.PathLike[str],
    *,
    stage_column: str | None = None,
    share_threshold: float = 0.5,
    column_threshold: float | None = None,
    method: str | None = None,
    n_bins: int = 20,
    stage_edges: tuple[float, ...] | None = None,
    seed: int = 0,
    name: str = "drift_report",
) -> DriftResult:
    """Run a (life-stage-matched) drift report; write HTML + JSON; return the verdict.

    `columns` are the monitored columns (numerical → numerical tests, others
    categorical). `method` forces one Evidently stat test for all columns
    (e.g. "ks", "wasserstein"); None lets Evidently choose per column.
    `stage_edges` matches on those life-stage bins instead of `n_bins` quantiles of the
    current stage (match_life_stage).
    Files: `<out_dir>/<name>.html` and `<name>.json`, each written atomically.
    """
    import numpy as np
    import pandas as pd

    if not columns:
        raise ValueError("no columns to monitor")
    missing = [c for c in columns if c not in reference.columns or c not in current.columns]
    if missing:
        raise KeyError(f"columns missing from reference or current: {missing}")
    if len(reference) == 0 or len(current) == 0:
        raise ValueError("reference and current data must both have rows")

    unmatched = 0.0
    if stage_column is not None:
        reference, unmatched = match_life_stage(
            reference, current, stage_column, n_bins=n_bins, seed=seed, edges=stage_edges
        )

    skipped = [c for c in columns if reference[c].isna().all() or current[c].isna().all()
               or _constant_in_both(reference[c], current[c])]
    tested = [c for c in columns if c not in skipped]
    if not tested:
        raise ValueError(f"every monitored column is empty in one frame: {skipped}")

    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    if method is None and min(len(reference), len(current)) < SMALL_SAMPLE:
        method = "ks"
    numerical = [c for c in tested if pd.api.types.is_numeric_dtype(current[c])]
    categorical = [c for c in tested if c not in numerical]
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    preset = DataDriftPreset(
        columns=tested, drift_share=share_threshold, threshold=column_threshold, method=method
    )
    report = Report([preset], include_tests=True)
    # Evidently correlates every pair of columns for its summary; a constant column (a frozen
    # or dead sensor, which data_quality reports) divides by a zero std in numpy there.
    with np.errstate(invalid="ignore", divide="ignore"):
        snapshot = report.run(
            Dataset.from_pandas(current[tested].reset_index(drop=True),
                                data_definition=definition),
            Dataset.from_pandas(reference[tested].reset_index(drop=True),
                                data_definition=definition),
        )  # Evidently 0.7: current first, reference second

    evidently_dict = json.loads(snapshot.json())
    per_column, evidently_share = parse_snapshot(evidently_dict)
    share = (
        evidently_share
        if evidently_share is not None
        else sum(v["drifted"] for v in per_column.values()) / max(len(per_column), 1)
    )

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path, json_path = out / f"{name}.html", out / f"{name}.json"
    result = DriftResult(
        drift=bool(share >= share_threshold),
        share=float(share),
        columns=per_column,
        html_path=html_path,
        json_path=json_path,
        n_reference=len(reference),
        n_current=len(current),
        stage_column=stage_column,
        unmatched_share=unmatched,
        skipped_columns=skipped,
        stage_bins=tuple(stage_edges or ()),
    )
    atomic.write_text(html_path, snapshot.get_html_str(as_iframe=False))
    payload = {
        "created_at": datetime.now(UTC).isoformat(),
        "twinops": result.summary(),
        "evidently": evidently_dict,
    }
    atomic.write_text(json_path, json.dumps(payload, indent=1, default=str))
    return result
