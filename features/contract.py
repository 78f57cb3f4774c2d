"""The data contract: the canonical tables every source is mapped onto.

    simulators ─┐
    C-MAPSS    ─┼─► readings (asset_id, timestamp, cycle, <settings>, <sensors> of its type)
    CSV/Parquet ┘   events   (asset_id, timestamp, cycle, event ∈ {failure, maintenance})

Everything downstream (validation, window features, Feast, training, serving,
monitoring) speaks these key columns; the settings and sensors are those of the
reading's asset type, declared in YAML (features.asset_types), never in code.
"""

from __future__ import annotations

ASSET_ID = "asset_id"
TIMESTAMP = "timestamp"
CYCLE = "cycle"
EVENT = "event"
#: Column of a mixed-type batch or of the asset registry: the asset type of the row.
ASSET_TYPE = "asset_type"
KEY_COLUMNS: list[str] = [ASSET_ID, TIMESTAMP, CYCLE]

EVENT_COLUMNS: list[str] = [ASSET_ID, TIMESTAMP, CYCLE, EVENT]

EVENT_FAILURE = "failure"
EVENT_MAINTENANCE = "maintenance"
EVENT_KINDS = (EVENT_FAILURE, EVENT_MAINTENANCE)

#: What one RUL prediction is: the model's output (training.artifact) and the prediction
#: log's columns (features.prediction_log) are both this list.
PREDICTION_COLUMNS: tuple[str, ...] = (
    "rul",
    "rul_lower",
    "rul_upper",
    "interval_level",
    "p_fail",
    "health",
)

#: Column added to quarantined rows: why the row was rejected.
QUARANTINE_REASON = "quarantine_reason"
