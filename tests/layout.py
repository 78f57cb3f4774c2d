"""The turbofan's column layout for tests written against it (the built-in declaration,
features/declarations/turbofan.yaml, and the C-MAPSS reader's column lists)."""

from features.asset_types import builtin
from features.sources.cmapss import (
    MEASUREMENT_COLUMNS,
    READING_COLUMNS,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
)
from features.transforms import sensor_features

TURBOFAN = builtin("turbofan")
FEATURE_COLUMNS = TURBOFAN.feature_columns
START_COLUMNS = sensor_features(SENSOR_COLUMNS, "vs_start")
MEAN_COLUMNS = sensor_features(SENSOR_COLUMNS, "mean")


def typed(window: int):
    """The turbofan type with another feature window."""
    return TURBOFAN.with_window(window)


__all__ = ["FEATURE_COLUMNS", "MEAN_COLUMNS", "MEASUREMENT_COLUMNS", "READING_COLUMNS",
           "SENSOR_COLUMNS", "SETTING_COLUMNS", "START_COLUMNS", "TURBOFAN", "typed"]
