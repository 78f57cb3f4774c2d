"""RUL labels from failure events.

    readings [asset_id, timestamp, cycle, ...] ─┐
    events   [asset_id, cycle, event]  ─────────┴─► [asset_id, timestamp, cycle, rul]

rul = ((cycle of the asset's next event at or after this reading) - cycle) x per_cycle,
when that next event is a failure; per_cycle is the asset type's RUL units per cycle
(1 for cycles, the sampling period in hours for an hours type).
Readings of assets with no later failure (still in service, or after their last
failure) get no label and are left out: their true RUL is unknown, and labelling
them with anything would teach the model a made-up target. So are readings whose next
event is a maintenance: the maintenance renewed the asset's life before it failed, and
the failure after it belongs to the new life (its readings are labelled with it). The cap (the usual
piecewise-linear target, 125 for C-MAPSS) is optional because it is a modelling
choice of the trainer, not a property of the data.
"""

from __future__ import annotations

import pandas as pd

from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_FAILURE, EVENT_MAINTENANCE, TIMESTAMP

LABEL_COLUMN = "rul"


def rul_labels(
    readings: pd.DataFrame, events: pd.DataFrame, cap: float | None = None,
    per_cycle: float = 1.0,
) -> pd.DataFrame:
    """Label each reading with the RUL to the next failure of its asset, in the type's
    units (float64); `cap` is in those units too."""
    ends = events[events[EVENT].isin([EVENT_FAILURE, EVENT_MAINTENANCE])]
    # a failure and a maintenance at one cycle: the failure ends the life
    ends = ends.assign(_fail=(ends[EVENT] == EVENT_FAILURE))
    ends = ends.sort_values([ASSET_ID, CYCLE, "_fail"]).drop_duplicates([ASSET_ID, CYCLE],
                                                                      keep="last")
    failures = ends[[ASSET_ID, CYCLE, "_fail"]].rename(columns={CYCLE: "_failure_cycle"})
    left = readings[[ASSET_ID, TIMESTAMP, CYCLE]].reset_index(drop=True)
    left["_row"] = range(len(left))
    if failures.empty or left.empty:
        out = left.iloc[0:0][[ASSET_ID, TIMESTAMP, CYCLE]].copy()
        out[LABEL_COLUMN] = pd.Series(dtype="float64")
        return out.reset_index(drop=True)
    # merge_asof needs both sides sorted by the "on" key; the join is per asset.
    left = left.astype({ASSET_ID: "string"})
    failures = failures.astype({ASSET_ID: "string", "_failure_cycle": "int64", "_fail": bool})
    merged = pd.merge_asof(
        left.sort_values(CYCLE, kind="mergesort"),
        failures.sort_values("_failure_cycle", kind="mergesort"),
        left_on=CYCLE,
        right_on="_failure_cycle",
        by=ASSET_ID,
        direction="forward",
    )
    merged = merged.dropna(subset=["_failure_cycle"])
    merged = merged[merged["_fail"].astype(bool)].sort_values("_row", kind="mergesort")
    rul = (merged["_failure_cycle"] - merged[CYCLE]).astype("float64") * float(per_cycle)
    if cap is not None:
        rul = rul.clip(upper=float(cap))
    out = merged[[ASSET_ID, TIMESTAMP, CYCLE]].copy()
    out[LABEL_COLUMN] = rul
    return out.reset_index(drop=True)
