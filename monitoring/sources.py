"""Monitoring inputs by source string: anything the ingest reads, or the prediction log.

    "predictions[:SINCE[/UNTIL]]" ─► PredictionLog.read(since, until) ─► distinct asset states
                                        (window features as served + the champion's predicted RUL)
    any ingest source (C-MAPSS .txt, CSV/Parquet file or folder, simulator[:opts])
        ─► features.sources.loader.load_source ─► readings, events
        ─► features.transforms.window_features   (THE transform, as training and serving)
        ─► + true capped RUL where a failure event labels the row (rul_labels)
                    │
                    ▼
            MonitoredFrame(features, kind, label column or None)

Why one resolver: the drift CLI compares "a reference" with "a current"
cohort, and either side may be a raw file (a fleet export, the training
data as it is) or what the service actually saw. Raw sources go through the
very same window transform as training, so their columns are the model's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from features.settings import Settings

PREDICTIONS = "predictions"
#: Column holding the true (capped) RUL of labelled raw rows.
TRUE_RUL = "true_rul"


@dataclass
class MonitoredFrame:
    features: pd.DataFrame
    #: "predictions" (has the champion's predicted `rul`) or "raw"
    kind: str
    source: str
    #: Raw readings as read (before validation), for the data-quality checks; None for the log.
    readings: pd.DataFrame | None = None

    @property
    def labelled(self) -> bool:
        return TRUE_RUL in self.features.columns and self.features[TRUE_RUL].notna().any()


def with_true_rul(
    features: pd.DataFrame, readings: pd.DataFrame, events: pd.DataFrame, cap: float | None,
    per_cycle: float = 1.0,
) -> pd.DataFrame:
    """Feature rows + `true_rul` (capped RUL to the next failure, in the type's units via
    `per_cycle`; NaN where unknown)."""
    from features.labels import rul_labels

    labels = rul_labels(readings, events, cap=cap, per_cycle=per_cycle).rename(
        columns={"rul": TRUE_RUL})
    return features.merge(labels[["asset_id", "cycle", TRUE_RUL]], on=["asset_id", "cycle"],
                          how="left")


def parse_time_range(option: str) -> tuple[str | None, str | None]:
    """'SINCE/UNTIL', 'SINCE', '/UNTIL' or '' -> (since, until) ISO strings or None."""
    since, _, until = option.partition("/")
    return since or None, until or None


def load_monitored(source: str, settings: Settings) -> MonitoredFrame:
    """Resolve a source string to monitored rows (see the module docstring)."""
    name, sep, option = source.partition(":")
    if name == PREDICTIONS:
        from features.prediction_log import PredictionLog
        from monitoring.drift import distinct_states

        since, until = parse_time_range(option if sep else "")
        log = PredictionLog(settings.prediction_log_path)
        try:
            frame = distinct_states(log.read(since=since, until=until,
                                             model_name=settings.model_name))
        finally:
            log.close()
        if not len(frame):
            raise ValueError(f"the prediction log has no rows in {source!r}")
        return MonitoredFrame(frame, PREDICTIONS, source)

    from features.sources.loader import load_source
    from features.transforms import window_features
    from features.validation import validate_readings

    readings, events = load_source(source, settings)
    # monitoring reads what the ingest would accept
    valid = validate_readings(readings, settings.type).valid
    if not len(valid):
        raise ValueError(f"no valid readings in {source!r}")
    frame = with_true_rul(window_features(valid, settings.type, events), valid, events,
                          settings.rul_cap, settings.type.rul_per_cycle)
    return MonitoredFrame(frame, "raw", source, readings=readings)
