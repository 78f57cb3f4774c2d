"""The raw data store under `data/` (DVC-tracked): readings and events as parquet.

    ingest ─► validate ─► append_readings ─► data/raw/<type>/readings.parquet ─► dvc add
                        └► quarantine      data/raw/<type>/events.parquet
               register_assets ─────────► data/raw/assets.parquet  (the asset registry)

Readings and events live per asset type, because their columns are the type's. The asset
registry holds one row per asset: its id, its type, when its life started, and metadata
(site, criticality) that planners and later work read; serving learns an asset's type
from it, and an id that arrives as another type than it is registered with is refused.

Readings already stored are the baseline for re-ingest: an identical row is not
appended twice (re-running an ingest is idempotent), and a row whose
(asset_id, cycle) is stored with other values is returned to the caller to be
quarantined as a conflict (nothing is silently dropped or overwritten). Every
write goes to a temporary file first and is renamed into place, so a crash
mid-write leaves the previous file intact (features.atomic); `write_lock` serialises
writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from features import atomic
from features.contract import ASSET_ID, ASSET_TYPE, CYCLE, EVENT_COLUMNS, TIMESTAMP
from features.settings import Settings

READINGS_FILE = "readings.parquet"
ASSETS_FILE = "assets.parquet"
#: Columns of the asset registry.
ASSET_COLUMNS = [ASSET_ID, ASSET_TYPE, "life_start", "site", "criticality"]
#: Lock files this thread holds (write_lock is re-entrant per thread).
_held = threading.local()
EVENTS_FILE = "events.parquet"


@contextlib.contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive lock over the raw store: one writer at a time across processes.

    Appends read the stored file, merge and rewrite it; two writers (BentoML
    workers answering /ingest, a batch `twinops ingest`) interleaving those
    steps would lose rows. An flock on <data_dir>/raw/.ingest.lock serialises
    them (all types: the asset registry is shared); hold it around any read-merge-write
    of readings, events or the registry.
    """
    path = Path(settings.raw_root) / ".ingest.lock"
    held = _held.__dict__.setdefault("paths", set())
    if path in held:  # re-entrant in one thread: a second flock would wait on ourselves
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        held.add(path)
        try:
            yield
        finally:
            held.discard(path)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    return pd.read_parquet(path)


def load_readings(settings: Settings) -> pd.DataFrame:
    """The stored readings of settings' asset type."""
    return _read(settings.raw_dir / READINGS_FILE, settings.type.reading_columns)


def load_events(settings: Settings) -> pd.DataFrame:
    return _read(settings.raw_dir / EVENTS_FILE, EVENT_COLUMNS)


def append_readings(settings: Settings, new: pd.DataFrame) -> tuple[int, int, pd.DataFrame]:
    """Append validated readings.

    Returns (rows appended, rows already stored identically, conflicting rows).
    Re-ingesting the same file is idempotent: identical rows are counted, not
    stored twice. A row whose (asset_id, cycle) is stored with *different*
    values is a conflict and is handed back for quarantine.
    """
    existing = load_readings(settings)
    reading_columns = settings.type.reading_columns
    if not len(existing):
        fresh, same, conflicts = new, new.iloc[:0], new.iloc[:0]
    else:
        keys = [ASSET_ID, CYCLE]
        joined = new.reset_index(drop=True).merge(
            existing[reading_columns],
            on=keys,
            how="left",
            suffixes=("", "__stored"),
            indicator=True,
        )
        stored = (joined["_merge"] == "both").to_numpy()
        value_cols = [c for c in reading_columns if c not in keys]
        equal = np.ones(len(joined), dtype=bool)
        for c in value_cols:
            a, b = joined[c], joined[f"{c}__stored"]
            equal &= ((a == b) | (a.isna() & b.isna())).fillna(False).to_numpy()
        new = new.reset_index(drop=True)
        fresh, same, conflicts = new[~stored], new[stored & equal], new[stored & ~equal]
    if len(fresh):
        merged = (
            pd.concat([existing, fresh[reading_columns]], ignore_index=True)
            if len(existing)
            else fresh[reading_columns]
        )
        merged = merged.sort_values([ASSET_ID, CYCLE], kind="stable").reset_index(drop=True)
        atomic.write_parquet(merged, settings.raw_dir / READINGS_FILE)
    return len(fresh), len(same), conflicts


def append_events(settings: Settings, new: pd.DataFrame) -> int:
    """Append failure/maintenance events (idempotent on asset_id, cycle, event)."""
    if new is None or not len(new):
        return 0
    existing = load_events(settings)
    merged = (
        pd.concat([existing, new[EVENT_COLUMNS]], ignore_index=True)
        if len(existing)
        else new[EVENT_COLUMNS]
    )
    before = len(existing)
    merged = merged.drop_duplicates([ASSET_ID, CYCLE, "event"], keep="first")
    merged = merged.sort_values([ASSET_ID, TIMESTAMP], kind="stable").reset_index(drop=True)
    atomic.write_parquet(merged, settings.raw_dir / EVENTS_FILE)
    return len(merged) - before


# ---- the asset registry ---------------------------------------------------------------


def load_assets(settings: Settings) -> pd.DataFrame:
    """The asset registry: one row per asset (ASSET_COLUMNS), every type."""
    path = Path(settings.raw_root) / ASSETS_FILE
    if not path.exists():
        return pd.DataFrame({c: pd.Series(dtype="string") for c in ASSET_COLUMNS}).astype(
            {"life_start": "datetime64[ns, UTC]"})
    return pd.read_parquet(path)


def asset_types_of(settings: Settings, asset_ids) -> dict[str, str]:
    """{asset_id: asset type} for the registered ids among `asset_ids`."""
    assets = load_assets(settings)
    known = dict(zip(assets[ASSET_ID].astype(str), assets[ASSET_TYPE].astype(str), strict=True))
    return {str(a): known[str(a)] for a in asset_ids if str(a) in known}


def register_assets(settings: Settings, readings: pd.DataFrame,
                    metadata: pd.DataFrame | None = None) -> pd.Series:
    """Register the assets of valid `readings` as settings' type; return the mask of rows
    whose asset is registered as another type (the caller quarantines them).

    New assets get their first reading's time as life start; `metadata` (asset_id + site
    / criticality) updates those fields. Hold `write_lock`.
    """
    kind = settings.asset_type
    assets = load_assets(settings)
    registered = dict(zip(assets[ASSET_ID].astype(str), assets[ASSET_TYPE].astype(str),
                          strict=True))
    ids = readings[ASSET_ID].astype(str)
    other = ids.map(lambda a: a in registered and registered[a] != kind).astype(bool)
    fresh = readings[~other.to_numpy() & ~ids.isin(registered).to_numpy()]
    new = pd.DataFrame()
    if len(fresh):
        first = fresh.groupby(ASSET_ID, sort=True)[TIMESTAMP].min()
        new = pd.DataFrame({ASSET_ID: first.index.astype(str), ASSET_TYPE: kind,
                            "life_start": pd.to_datetime(first.to_numpy(), utc=True),
                            "site": pd.NA, "criticality": pd.NA})
    merged = pd.concat([assets, new], ignore_index=True) if len(new) else assets
    if metadata is not None and len(metadata):
        meta = metadata.drop_duplicates(ASSET_ID, keep="last").set_index(ASSET_ID)
        merged = merged.set_index(ASSET_ID)
        for col in ("site", "criticality"):
            if col in meta:
                mine = meta.index.intersection(merged.index[merged[ASSET_TYPE] == kind])
                merged.loc[mine, col] = meta.loc[mine, col]
        merged = merged.reset_index()
    if len(new) or metadata is not None:
        merged = merged[ASSET_COLUMNS].astype({ASSET_ID: "string", ASSET_TYPE: "string",
                                               "site": "string", "criticality": "string"})
        atomic.write_parquet(merged.sort_values(ASSET_ID, kind="stable").reset_index(drop=True),
                             Path(settings.raw_root) / ASSETS_FILE)
    return other.to_numpy()


def life_starts(settings: Settings) -> dict[str, pd.Timestamp]:
    """{asset_id: life start} of settings' type (the age origin of a timestamp type)."""
    assets = load_assets(settings)
    mine = assets[assets[ASSET_TYPE].astype(str) == settings.asset_type]
    return dict(zip(mine[ASSET_ID].astype(str), pd.to_datetime(mine["life_start"], utc=True),
                    strict=True))
