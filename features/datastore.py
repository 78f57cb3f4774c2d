"""The raw data store under `data/` (DVC-tracked): readings and events as parquet.

    ingest ─► validate ─► append_readings ─► data/raw/<type>/readings.parquet ─► dvc add
                        └► quarantine      data/raw/<type>/events.parquet
               register_assets ─────────► data/raw/assets.parquet  (the asset registry)

Readings and events live per asset type, because their columns are the type's. The asset
registry holds one row per asset: its id, its type, when its life started, its site and
the maintenance figures it overrides its type's defaults with (criticality, costs, lead
time: features.maintenance, `twinops assets import`); serving learns an asset's type
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
from features.maintenance import PROFILE_FIELDS
from features.settings import Settings

READINGS_FILE = "readings.parquet"
ASSETS_FILE = "assets.parquet"
#: Columns of the asset registry: identity, life start, site and the maintenance profile
#: fields an asset overrides its type's defaults with (features.maintenance).
ASSET_COLUMNS = [ASSET_ID, ASSET_TYPE, "life_start", "site", *PROFILE_FIELDS]
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


def _registry_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with exactly the registry's columns and dtypes (a file written before a
    column existed gets it empty; an old text criticality that is not a number, NaN)."""
    out = frame.copy()
    for col in ASSET_COLUMNS:
        if col not in out.columns:
            out[col] = pd.NA
    out = out[ASSET_COLUMNS]
    for col in PROFILE_FIELDS:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    out["life_start"] = pd.to_datetime(out["life_start"], utc=True)
    return out.astype({ASSET_ID: "string", ASSET_TYPE: "string", "site": "string"})


def load_assets(settings: Settings) -> pd.DataFrame:
    """The asset registry: one row per asset (ASSET_COLUMNS), every type."""
    path = Path(settings.raw_root) / ASSETS_FILE
    return _registry_frame(pd.read_parquet(path) if path.exists()
                           else pd.DataFrame(columns=ASSET_COLUMNS))


def _write_assets(settings: Settings, assets: pd.DataFrame) -> None:
    atomic.write_parquet(
        _registry_frame(assets).sort_values(ASSET_ID, kind="stable").reset_index(drop=True),
        Path(settings.raw_root) / ASSETS_FILE)


def asset_types_of(settings: Settings, asset_ids) -> dict[str, str]:
    """{asset_id: asset type} for the registered ids among `asset_ids`."""
    assets = load_assets(settings)
    known = dict(zip(assets[ASSET_ID].astype(str), assets[ASSET_TYPE].astype(str), strict=True))
    return {str(a): known[str(a)] for a in asset_ids if str(a) in known}


def register_assets(settings: Settings, readings: pd.DataFrame) -> pd.Series:
    """Register the assets of valid `readings` as settings' type; return the mask of rows
    whose asset is registered as another type (the caller quarantines them).

    New assets get their first reading's time as life start, and so does an asset
    registered by a metadata import before it ever reported. Hold `write_lock`.
    """
    kind = settings.asset_type
    assets = load_assets(settings)
    registered = dict(zip(assets[ASSET_ID].astype(str), assets[ASSET_TYPE].astype(str),
                          strict=True))
    ids = readings[ASSET_ID].astype(str)
    other = ids.map(lambda a: a in registered and registered[a] != kind).astype(bool)
    mine = readings[~other.to_numpy()]
    if not len(mine):
        return other.to_numpy()
    first = mine.groupby(mine[ASSET_ID].astype(str), sort=True)[TIMESTAMP].min()
    first = pd.Series(pd.to_datetime(first.to_numpy(), utc=True), index=first.index)
    unstarted = assets[ASSET_ID].astype(str).isin(first.index) & assets["life_start"].isna()
    fresh = first[~first.index.isin(registered)]
    if len(fresh) or unstarted.any():
        assets.loc[unstarted, "life_start"] = (
            assets.loc[unstarted, ASSET_ID].astype(str).map(first).to_numpy())
        new = pd.DataFrame({ASSET_ID: fresh.index, ASSET_TYPE: kind,
                            "life_start": fresh.to_numpy()})
        _write_assets(settings, pd.concat([assets, _registry_frame(new)], ignore_index=True)
                      if len(new) else assets)
    return other.to_numpy()


def import_asset_metadata(settings: Settings, rows: pd.DataFrame) -> dict[str, int]:
    """Write validated metadata rows (features.maintenance.read_metadata_file) into the
    registry: a row's non-empty fields replace the asset's; an unregistered asset is
    registered (its `asset_type` is then required). Every row is checked against the
    registry and the declared types before anything is written: a bad row refuses the
    whole import (MetadataError naming each). Returns {"updated": n, "registered": n}."""
    from features.maintenance import MetadataError

    declared = settings.declared_types()
    with write_lock(settings):
        assets = load_assets(settings).set_index(ASSET_ID)
        errors, fresh = [], []
        for i, row in enumerate(rows.to_dict("records"), start=1):
            asset, kind = str(row[ASSET_ID]), row.get(ASSET_TYPE)
            stored = assets[ASSET_TYPE].get(asset)
            if kind is not None and not pd.isna(kind) and kind not in declared:
                errors.append(f"row {i} (asset_id {asset!r}): asset_type: {kind!r} is not a "
                              f"declared type ({', '.join(sorted(declared))})")
            elif stored is not None and kind is not None and not pd.isna(kind) \
                    and kind != stored:
                errors.append(f"row {i} (asset_id {asset!r}): asset_type: registered as "
                              f"{stored!r}, not {kind!r}")
            elif stored is None and (kind is None or pd.isna(kind)):
                errors.append(f"row {i} (asset_id {asset!r}): asset_type: required for an "
                              "asset not in the registry yet")
            elif stored is None:
                fresh.append(asset)
        if errors:
            raise MetadataError(f"{len(errors)} problem(s), nothing imported:\n  "
                                + "\n  ".join(errors))
        new = rows[rows[ASSET_ID].isin(fresh)][[ASSET_ID, ASSET_TYPE]]
        assets = pd.concat([assets.reset_index(), _registry_frame(new)], ignore_index=True)
        assets = assets.set_index(ASSET_ID)
        for row in rows.to_dict("records"):
            for col in ("site", *PROFILE_FIELDS):
                value = row.get(col)
                if value is not None and not pd.isna(value):
                    assets.loc[str(row[ASSET_ID]), col] = value
        _write_assets(settings, assets.reset_index())
    return {"updated": len(rows) - len(fresh), "registered": len(fresh)}


def last_failures(settings: Settings) -> dict[str, float]:
    """{asset_id: epoch seconds of its last recorded failure}, over every declared type:
    what tells an asset that failed and is out of service from one still running."""
    out: dict[str, float] = {}
    for kind in settings.declared_types():
        events = load_events(settings.for_type(kind))
        failures = events[events["event"].astype(str) == "failure"]
        if len(failures):
            last = pd.to_datetime(failures[TIMESTAMP], utc=True).groupby(
                failures[ASSET_ID].astype(str)).max()
            out.update({a: t.timestamp() for a, t in last.items()})
    return out


def life_starts(settings: Settings) -> dict[str, pd.Timestamp]:
    """{asset_id: life start} of settings' type (the age origin of a timestamp type)."""
    assets = load_assets(settings)
    mine = assets[(assets[ASSET_TYPE].astype(str) == settings.asset_type)
                  & assets["life_start"].notna()]  # registered by an import, never reported
    return dict(zip(mine[ASSET_ID].astype(str), pd.to_datetime(mine["life_start"], utc=True),
                    strict=True))
