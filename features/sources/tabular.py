"""CSV / Parquet import (a file or a folder of files) mapped onto an asset type's columns.

    *.csv | *.parquet | folder/ ─► rename via `columns` ─► the type's columns (raw values)
                                                          └─► validation.validate_readings

The reader only maps names and concatenates files; it deliberately does not
coerce types or drop anything, so that `validation` sees the raw values and can
quarantine each bad row with its reason instead of this module silently turning
"n/a" into NaN. Missing columns are a hard, named error here because no row of such
a file could ever pass validation (a `timestamp` type may leave out `cycle`: validation
derives it from the time).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.contract import CYCLE

if TYPE_CHECKING:  # pragma: no cover
    from features.asset_types import AssetType

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class MissingColumnsError(ValueError):
    """The source lacks contract columns (listed in `.missing`)."""

    def __init__(self, missing: list[str], source: str):
        self.missing = missing
        super().__init__(f"{source}: missing required column(s): {', '.join(missing)}")


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in _SUFFIXES)
        if not files:
            raise FileNotFoundError(f"no .csv/.parquet files under {path}")
        return files
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.suffix.lower() not in _SUFFIXES:
        raise ValueError(f"unsupported file type {path.suffix!r} (use .csv or .parquet)")
    return [path]


def _read_one(path: Path) -> pd.DataFrame:
    if _SUFFIXES[path.suffix.lower()] == "csv":
        # dtype=object for ids: keeps "007" as "007"; numbers stay as parsed.
        return pd.read_csv(path, dtype={"asset_id": "string"}, keep_default_na=True)
    return pd.read_parquet(path)


def read_tabular(
    path: str | Path,
    asset_type: AssetType,
    columns: Mapping[str, str] | None = None,
    *,
    allow_missing_measurements: bool = False,
) -> pd.DataFrame:
    """Read readings of `asset_type` from CSV/Parquet (file or folder).

    columns: optional {source_name: contract_name} rename map.
    allow_missing_measurements: if True, absent setting/sensor columns are added as
        NaN (a plant with fewer channels); validation will then flag those rows.
        Missing asset_id/timestamp/cycle is always an error.
    Returns the type's columns only (extra columns dropped), raw values.
    """
    wanted = list(asset_type.reading_columns)
    measurements = asset_type.measurement_columns
    frames = []
    for f in _files(Path(path)):
        df = _read_one(f)
        if columns:
            df = df.rename(columns=dict(columns))
        if asset_type.time_index == "timestamp" and CYCLE not in df.columns:
            wanted = [c for c in wanted if c != CYCLE]
        missing = [c for c in wanted if c not in df.columns]
        if allow_missing_measurements:
            for c in [c for c in missing if c in measurements]:
                df[c] = float("nan")
            missing = [c for c in missing if c not in measurements]
        if missing:
            raise MissingColumnsError(missing, str(f))
        frames.append(df[wanted])
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
