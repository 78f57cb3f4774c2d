"""RUL labels from failure events.

    readings [asset_id, timestamp, cycle, ...] ─┐
    events   [asset_id, cycle, event=failure] ──┴─► [asset_id, timestamp, cycle, rul]

rul = (cycle of the asset's next failure at or after this reading) - cycle.
Readings of assets with no later failure (still in service, or after their last
failure) get no label and are left out: their true RUL is unknown, and labelling
them with anything would teach the model a made-up target. The cap (the usual
piecewise-linear target, 125 for C-MAPSS) is optional because it is a modelling
choice of the trainer, not a property of the data.
"""

from __future__ import annotations

import pandas as pd

from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_FAILURE, TIMESTAMP

LABEL_COLUMN = "rul"


def rul_labels(
    readings: pd.DataFrame, events: pd.DataFrame, cap: float | None = None
) -> pd.DataFrame:
    """Label each reading with cycles to the next failure of its asset (float64)."""
    failures = events.loc[events[EVENT] == EVENT_FAILURE, [ASSET_ID, CYCLE]]
    failures = failures.rename(columns={CYCLE: "_failure_cycle"})
    left = readings[[ASSET_ID, TIMESTAMP, CYCLE]].reset_index(drop=True)
    left["_row"] = range(len(left))
    if failures.empty or left.empty:
        out = left.iloc[0:0][[ASSET_ID, TIMESTAMP, CYCLE]].copy()
        out[LABEL_COLUMN] = pd.Series(dtype="float64")
        return out.reset_index(drop=True)
    # merge_asof needs both sides sorted by the "on" key; the join is per asset.
    left = left.astype({ASSET_ID: "string"})
    failures = failures.astype({ASSET_ID: "string", "_failure_cycle": "int64"})
    merged = pd.merge_asof(
        left.sort_values(CYCLE, kind="mergesort"),
        failures.sort_values("_failure_cycle", kind="mergesort"),
        left_on=CYCLE,
        right_on="_failure_cycle",
        by=ASSET_ID,
        direction="forward",
    )
    merged = merged.dropna(subset=["_failure_cycle"]).sort_values("_row", kind="mergesort")
    rul = (merged["_failure_cycle"] - merged[CYCLE]).astype("float64")
    if cap is not None:
        rul = rul.clip(upper=float(cap))
    out = merged[[ASSET_ID, TIMESTAMP, CYCLE]].copy()
    out[LABEL_COLUMN] = rul
    return out.reset_index(drop=True)
