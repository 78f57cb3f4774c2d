"""Reader for NASA C-MAPSS turbofan files (train_/test_/RUL_FD00x.txt).

    train_FD001.txt ─► readings (asset "FD001-train-<unit>") + failure event at last cycle
    test_FD001.txt  ─► readings (asset "FD001-test-<unit>"),  no events (still running)
    RUL_FD001.txt   ─► [asset_id, rul]  true RUL after each test unit's last cycle

The files are 26 space-separated columns (unit, cycle, 3 settings, 21 sensors)
with trailing spaces and no header. C-MAPSS has no wall-clock time, so timestamps
are synthesised deterministically: cycle c of unit u is at
epoch + u·(1000 h) + (c-1)·1 h. Units therefore never overlap in time and re-reading
the file gives identical timestamps (point-in-time joins stay reproducible). The
train and test splits get different epochs so that their asset ids and times
never collide.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_COLUMNS, EVENT_FAILURE, TIMESTAMP

#: The C-MAPSS layout, as the turbofan asset type declares it
#: (features/declarations/turbofan.yaml): the file's 3 settings and 21 sensors, in order.
SETTING_COLUMNS: list[str] = [f"op_setting_{i}" for i in range(1, 4)]
SENSOR_COLUMNS: list[str] = [f"sensor_{i}" for i in range(1, 22)]
MEASUREMENT_COLUMNS: list[str] = SETTING_COLUMNS + SENSOR_COLUMNS
READING_COLUMNS: list[str] = [ASSET_ID, TIMESTAMP, CYCLE, *MEASUREMENT_COLUMNS]
#: The asset type C-MAPSS readings are.
ASSET_TYPE = "turbofan"

_RAW_COLUMNS = ["unit", CYCLE, *MEASUREMENT_COLUMNS]
_EPOCH = {
    "train": datetime(2000, 1, 1, tzinfo=UTC),
    "test": datetime(2010, 1, 1, tzinfo=UTC),
}
_UNIT_SPACING = timedelta(hours=1000)  # > longest C-MAPSS trajectory (~550 cycles)
_CYCLE = timedelta(hours=1)


def asset_id(subset: str, split: str, unit: int) -> str:
    """Canonical asset id of a C-MAPSS unit, e.g. 'FD001-train-1'."""
    return f"{subset}-{split}-{int(unit)}"


def _read_raw(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    # sep=r"\s+" swallows the trailing spaces; exactly 26 columns or we fail loudly.
    df = pd.read_csv(path, sep=r"\s+", header=None, engine="c")
    if df.shape[1] != len(_RAW_COLUMNS):
        raise ValueError(f"{path}: expected {len(_RAW_COLUMNS)} columns, got {df.shape[1]}")
    df.columns = _RAW_COLUMNS
    return df


def read_cmapss(
    data_dir: str | Path, subset: str = "FD001", split: str = "train"
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read one split of a C-MAPSS subset as (readings, events) in contract columns.

    Train units ran to failure: one `failure` event on their last cycle. Test units
    were cut before failure: the events frame is empty (see `read_true_rul`).
    """
    if split not in _EPOCH:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    raw = _read_raw(Path(data_dir) / f"{split}_{subset}.txt")
    unit = raw["unit"].to_numpy(np.int64)
    cyc = raw[CYCLE].to_numpy(np.int64)
    ts = (
        pd.Timestamp(_EPOCH[split])
        + pd.to_timedelta(unit * (_UNIT_SPACING // _CYCLE), unit="h")
        + pd.to_timedelta(cyc - 1, unit="h")
    )
    readings = pd.DataFrame(
        {
            ASSET_ID: pd.array([asset_id(subset, split, u) for u in unit], dtype="string"),
            TIMESTAMP: pd.DatetimeIndex(ts).astype("datetime64[ns, UTC]"),
            CYCLE: cyc,
        }
    )
    readings[MEASUREMENT_COLUMNS] = raw[MEASUREMENT_COLUMNS].astype("float64").to_numpy()
    readings = readings[READING_COLUMNS]

    if split == "train":
        last = readings.loc[readings.groupby(ASSET_ID, sort=False)[CYCLE].idxmax()]
        events = last[[ASSET_ID, TIMESTAMP, CYCLE]].assign(**{EVENT: EVENT_FAILURE})
    else:
        events = pd.DataFrame({c: [] for c in EVENT_COLUMNS})
        events = events.astype({CYCLE: "int64"})
        events[TIMESTAMP] = pd.to_datetime(events[TIMESTAMP], utc=True)
    events = events[EVENT_COLUMNS].reset_index(drop=True)
    events[ASSET_ID] = events[ASSET_ID].astype("string")
    events[EVENT] = events[EVENT].astype("string")
    events[TIMESTAMP] = events[TIMESTAMP].astype("datetime64[ns, UTC]")
    return readings, events


def read_true_rul(data_dir: str | Path, subset: str = "FD001") -> pd.DataFrame:
    """[asset_id, rul]: true remaining cycles after each test unit's last observed cycle.

    RUL_FD00x.txt lists one integer per test unit, in unit order (line i = unit i).
    """
    path = Path(data_dir) / f"RUL_{subset}.txt"
    if not path.exists():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    rul = pd.read_csv(path, sep=r"\s+", header=None).iloc[:, 0].astype("int64")
    return pd.DataFrame(
        {
            ASSET_ID: pd.array(
                [asset_id(subset, "test", i + 1) for i in range(len(rul))], dtype="string"
            ),
            "rul": rul.to_numpy(),
        }
    )
