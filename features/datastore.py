"""The raw data store under `data/` (DVC-tracked): readings and events as parquet.

    ingest ─► validate ─► append_readings ─► data/raw/readings.parquet ─► dvc add
                        └► quarantine      data/raw/events.parquet

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
from features.contract import ASSET_ID, CYCLE, EVENT_COLUMNS, READING_COLUMNS, TIMESTAMP
from features.settings import Settings

READINGS_FILE = "readings.parquet"
#: Lock files this thread holds (write_lock is re-entrant per thread).
_held = threading.local()
EVENTS_FILE = "events.parquet"


@contextlib.contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive lock over the raw store: one writer at a time across processes.

    Appends read the stored file, merge and rewrite it; two writers (BentoML
    workers answering /ingest, a batch `twinops ingest`) interleaving those
    steps would lose rows. An flock on <data_dir>/raw/.ingest.lock serialises
    them; hold it around any read-merge-write of readings or events.
    """
    path = Path(settings.raw_dir) / ".ingest.lock"
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
    return _read(settings.raw_dir / READINGS_FILE, READING_COLUMNS)


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
    if not len(existing):
        fresh, same, conflicts = new, new.iloc[:0], new.iloc[:0]
    else:
        keys = [ASSET_ID, CYCLE]
        joined = new.reset_index(drop=True).merge(
            existing[READING_COLUMNS],
            on=keys,
            how="left",
            suffixes=("", "__stored"),
            indicator=True,
        )
        stored = (joined["_merge"] == "both").to_numpy()
        value_cols = [c for c in READING_COLUMNS if c not in keys]
        equal = np.ones(len(joined), dtype=bool)
        for c in value_cols:
            a, b = joined[c], joined[f"{c}__stored"]
            equal &= ((a == b) | (a.isna() & b.isna())).fillna(False).to_numpy()
        new = new.reset_index(drop=True)
        fresh, same, conflicts = new[~stored], new[stored & equal], new[stored & ~equal]
    if len(fresh):
        merged = (
            pd.concat([existing, fresh[READING_COLUMNS]], ignore_index=True)
            if len(existing)
            else fresh[READING_COLUMNS]
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
