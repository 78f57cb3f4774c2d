"""The data contract: the canonical tables every source is mapped onto.

    simulator ─┐
    C-MAPSS   ─┼─► readings (asset_id, timestamp, cycle, op_setting_1..3, sensor_1..21)
    CSV/Parquet┘   events   (asset_id, timestamp, cycle, event ∈ {failure, maintenance})

Everything downstream (validation, window features, Feast, training, serving,
monitoring) speaks these column names and nothing source-specific. The sensor
set follows the 21-channel turbofan layout of C-MAPSS because the simulator
imitates that plant; a source with fewer channels maps the missing ones to NaN
and validation says so.
"""

from __future__ import annotations

ASSET_ID = "asset_id"
TIMESTAMP = "timestamp"
CYCLE = "cycle"
EVENT = "event"

SETTING_COLUMNS: list[str] = [f"op_setting_{i}" for i in range(1, 4)]
SENSOR_COLUMNS: list[str] = [f"sensor_{i}" for i in range(1, 22)]
MEASUREMENT_COLUMNS: list[str] = SETTING_COLUMNS + SENSOR_COLUMNS

READING_COLUMNS: list[str] = [ASSET_ID, TIMESTAMP, CYCLE, *MEASUREMENT_COLUMNS]
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

#: Pandas dtypes of the readings table (timestamp is tz-aware UTC).
READING_DTYPES: dict[str, str] = {
    ASSET_ID: "string",
    TIMESTAMP: "datetime64[ns, UTC]",
    CYCLE: "int64",
    **{c: "float64" for c in MEASUREMENT_COLUMNS},
}
