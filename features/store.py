"""Feast feature store: offline parquet, online SQLite/Redis, objects per asset type.

    window_features ─► write_offline_features ─► <feast_dir>/offline/<type>_window_features.parquet
                                                   │                    │
                         training_frame (get_historical_features,       │ materialize
                         point-in-time, FeatureService rul_<type>)      ▼
                                        online store (<feast_dir>/online_store.db | redis)
    latest_window_features ─► push_features ──────►   ▲  (PushSource; + atomic offline append)
                                                      │
                                     online_features (get_online_features) ─► serving

All state lives under settings.feast_dir (registry.db, online_store.db, offline
parquet): two runs with different state dirs never share anything. One store holds every
asset type; each function works on the type of the settings it is given (its feature
view, push source, FeatureService and parquet; names in features.repo.definitions). The YAML in
features/repo stays the single description of the store; get_store() reads it,
substitutes the ${TWINOPS_...} variables from Settings (falling back to the
environment), and builds a RepoConfig whose repo_path is the feast dir — without
mutating os.environ, so tests and concurrent runs cannot leak into each other.

Feast is imported inside functions only (it costs seconds at import).
"""

from __future__ import annotations

import contextlib
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features import atomic
from features.contract import ASSET_ID, CYCLE, TIMESTAMP

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

    from features.settings import Settings

REPO_DIR = Path(__file__).parent / "repo"
#: Column of online_features(): event time of the served feature row.
FEATURE_TIMESTAMP = "feature_timestamp"
#: Column of online_features(): False when the store has no row for the asset.
FOUND = "found"
#: Column name Feast expects for the event time of entity rows in a point-in-time join.
ENTITY_TIMESTAMP = "event_timestamp"


# The Feast object names of an asset type (features.repo.definitions builds the objects).
def feature_service_name(asset_type: str) -> str:
    """The FeatureService a type's RUL model reads (recorded on every model version)."""
    return f"rul_{asset_type}"


def feature_view_name(asset_type: str) -> str:
    return f"{asset_type}_window_features"


def push_source_name(asset_type: str) -> str:
    return f"{asset_type}_window_push"


def offline_relpath(asset_type: str) -> str:
    """Offline parquet of a type, relative to the feast dir (settings.feast_dir)."""
    return f"offline/{asset_type}_window_features.parquet"


def offline_columns(settings: Settings) -> list[str]:
    return [ASSET_ID, TIMESTAMP, CYCLE, *settings.type.feature_columns]


def view_columns(settings: Settings) -> list[str]:
    """The feature view's fields besides the entity: the reading's cycle, then the model's
    features (what online reads return, and the prediction log records)."""
    return [CYCLE, *settings.type.feature_columns]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def offline_path(settings: Settings) -> Path:
    return Path(settings.feast_dir) / offline_relpath(settings.asset_type)


def _yaml_vars(settings: Settings) -> dict[str, str]:
    return {
        "TWINOPS_FEAST_DIR": str(Path(settings.feast_dir)),
        "TWINOPS_FEAST_PROJECT": settings.feast.project,
    }


def repo_config(settings: Settings):
    """RepoConfig from features/repo/feature_store.yaml with this run's paths."""
    import yaml
    from feast.repo_config import RepoConfig

    values = _yaml_vars(settings)
    text = (REPO_DIR / "feature_store.yaml").read_text()
    text = _VAR.sub(lambda m: values.get(m.group(1), os.environ.get(m.group(1), m.group(0))), text)
    raw = yaml.safe_load(text)
    if settings.feast.online_store == "redis":
        raw["online_store"] = {
            "type": "redis",
            "connection_string": settings.feast.redis_connection,
        }
    config = RepoConfig(**raw)
    config.repo_path = Path(settings.feast_dir)
    from features.quiet import quiet_library_noise

    quiet_library_noise()  # importing feast put its own warning filters in front of ours
    return config


def get_store(settings: Settings) -> FeatureStore:
    """A FeatureStore whose registry, online db and offline parquet sit under feast_dir.

    A state dir that was moved or copied has its registered paths rewritten first
    (features.relocate), so the store never reads the original's parquet.
    """
    from features.relocate import ensure_state_root

    ensure_state_root(settings)
    return open_store(settings)


def open_store(settings: Settings) -> FeatureStore:
    """get_store without the relocation check (what the relocation itself opens)."""
    from feast import FeatureStore

    feast_dir = Path(settings.feast_dir)
    (feast_dir / "offline").mkdir(parents=True, exist_ok=True)
    return FeatureStore(repo_path=str(feast_dir), config=repo_config(settings))


def definitions(settings: Settings):
    """The Feast objects for this run (paths and TTL from settings)."""
    from features.repo.definitions import build

    return build(str(offline_path(settings)), timedelta(days=settings.feast.ttl_days),
                 settings.type)


def apply_definitions(settings: Settings, store: FeatureStore | None = None) -> FeatureStore:
    """Register entity, sources, feature view and service (idempotent).

    Feast validates a FileSource against its file when applying, so an empty
    parquet with the right schema is created first if none exists yet.
    """
    store = store or get_store(settings)
    path = offline_path(settings)
    if not path.exists():
        write_offline_features(settings, _empty_features(settings))
    store.apply(definitions(settings).objects())
    return store


def _empty_features(settings: Settings) -> pd.DataFrame:
    df = pd.DataFrame({c: pd.Series(dtype="float64") for c in offline_columns(settings)})
    return df.astype({ASSET_ID: "string", TIMESTAMP: "datetime64[ns, UTC]", CYCLE: "int64"})


def _offline_frame(settings: Settings, features_df: pd.DataFrame) -> pd.DataFrame:
    columns = offline_columns(settings)
    missing = [c for c in columns if c not in features_df.columns]
    if missing:
        raise ValueError(f"feature frame lacks {settings.asset_type} column(s): "
                         f"{', '.join(missing)}")
    df = features_df[columns].copy()
    df[ASSET_ID] = df[ASSET_ID].astype("string")
    df[TIMESTAMP] = pd.to_datetime(df[TIMESTAMP], utc=True).astype("datetime64[ns, UTC]")
    df[CYCLE] = df[CYCLE].astype("int64")
    floats = columns[3:]
    df[floats] = df[floats].astype("float64")
    return df


def write_offline_features(
    settings: Settings, features_df: pd.DataFrame, *, append: bool = False
) -> Path:
    """Write window features to the offline parquet atomically (features.atomic).

    append=False replaces the file (a full recompute); append=True adds rows and
    keeps the last row per (asset_id, timestamp), so re-pushing is idempotent.
    Readers (Feast joins, materialization) therefore only ever see a complete file.
    """
    from features.datastore import write_lock

    path = offline_path(settings)
    df = _offline_frame(settings, features_df)
    # An append is a read-merge-write: two /ingest workers pushing at once (after the raw
    # store's lock is released) would each rewrite the file without the other's rows.
    with write_lock(settings) if append else contextlib.nullcontext():
        if append and path.exists():
            old = _offline_frame(settings, pd.read_parquet(path))
            df = pd.concat([old, df], ignore_index=True)
            df = df.drop_duplicates([ASSET_ID, TIMESTAMP], keep="last")
        df = df.sort_values([ASSET_ID, TIMESTAMP], kind="mergesort").reset_index(drop=True)
        return atomic.write_parquet(df, path)


def materialize(
    settings: Settings,
    end: datetime | None = None,
    *,
    start: datetime | None = None,
    store: FeatureStore | None = None,
) -> tuple[datetime, datetime] | None:
    """Load the latest offline row per asset in [start, end) into the online store.

    An explicit window, not materialize_incremental: incremental starts at
    `end - ttl` on the first run, which would silently skip historical data sets
    (C-MAPSS is stamped in 2000-2010). Defaults: start = oldest offline row,
    end = newest offline row + 1 s. Returns the window used (None: nothing to load).
    """
    path = offline_path(settings)
    if not path.exists():
        return None
    ts = pd.read_parquet(path, columns=[TIMESTAMP])[TIMESTAMP]
    if ts.empty:
        return None
    start = start or ts.min().to_pydatetime()
    end = end or (ts.max() + pd.Timedelta(seconds=1)).to_pydatetime()
    store = store or get_store(settings)
    store.materialize(start_date=_utc(start), end_date=_utc(end),
                      feature_views=[feature_view_name(settings.asset_type)])
    return _utc(start), _utc(end)


def _utc(t: datetime) -> datetime:
    t = pd.Timestamp(t)
    return (t.tz_localize(UTC) if t.tzinfo is None else t.tz_convert(UTC)).to_pydatetime()


def training_frame(
    settings: Settings, entity_df: pd.DataFrame, store: FeatureStore | None = None
) -> pd.DataFrame:
    """Point-in-time join of the type's FeatureService (`rul_<type>`) onto entity_df rows.

    entity_df: asset_id, timestamp (+ any label columns, kept). For each row the
    newest feature row of that asset with feature timestamp <= row timestamp
    (and within the TTL) is joined; rows with none get NaN features. Entity
    columns that collide with feature names (e.g. a label frame's `cycle`) are
    kept as `entity_<name>`. Row order of entity_df is preserved.
    """
    store = store or get_store(settings)
    columns = view_columns(settings)
    ent = entity_df.reset_index(drop=True).copy()
    for c in [c for c in ent.columns if c in columns]:
        ent = ent.rename(columns={c: f"entity_{c}"})
    ent[ASSET_ID] = ent[ASSET_ID].astype("string")
    # Feast's name for the entity rows' time (any other name is guessed, with a printed note)
    ent = ent.rename(columns={TIMESTAMP: ENTITY_TIMESTAMP})
    ent[ENTITY_TIMESTAMP] = pd.to_datetime(ent[ENTITY_TIMESTAMP], utc=True)
    ent["__row"] = np.arange(len(ent))
    service = store.get_feature_service(feature_service_name(settings.asset_type))
    joined = store.get_historical_features(entity_df=ent, features=service).to_df()
    ent = ent.rename(columns={ENTITY_TIMESTAMP: TIMESTAMP})
    # Feast's file (Dask) store drops entity rows that have no feature row in
    # the TTL window instead of returning NaN; re-attach them by row id so the
    # result always has one row per entity row, in the caller's order.
    feats = joined[["__row", *columns]]
    out = ent.merge(feats, on="__row", how="left", validate="one_to_one")
    out = out.sort_values("__row", kind="mergesort").drop(columns="__row").reset_index(drop=True)
    out[ASSET_ID] = out[ASSET_ID].astype("string")
    return out


def online_features(settings: Settings, asset_ids: list[str],
                    store: FeatureStore | None = None) -> pd.DataFrame:
    """Latest features per asset of settings' type from the online store, one row per asked
    id, in order.

    Columns: asset_id, found (bool), feature_timestamp (UTC, NaT if not found),
    cycle, *the type's feature columns (NaN if not found; cycle becomes float then). Unknown
    assets are flagged rather than raised so a batch request can answer per item.
    """
    store = store or get_store(settings)
    columns = view_columns(settings)
    ids = [str(a) for a in asset_ids]
    if not ids:
        cols = {
            ASSET_ID: pd.Series(dtype="string"),
            FOUND: pd.Series(dtype=bool),
            FEATURE_TIMESTAMP: pd.Series(dtype="datetime64[ns, UTC]"),
        }
        cols.update({c: pd.Series(dtype="float64") for c in columns})
        return pd.DataFrame(cols)
    service = store.get_feature_service(feature_service_name(settings.asset_type))
    resp = store.get_online_features(features=service, entity_rows=[{ASSET_ID: a} for a in ids])
    data = resp.to_dict(include_event_timestamps=True)
    feats = pd.DataFrame({c: data[c] for c in columns})
    found = feats[[CYCLE]].notna().any(axis=1).to_numpy()  # a NaN feature is not absence
    feats = feats.astype("float64")
    # Event timestamps come back as epoch seconds per feature; all features of a
    # row share the view's timestamp. Not-found rows report 0 -> NaT.
    secs = np.asarray(data[f"{CYCLE}__ts"], dtype="float64")
    ts = pd.to_datetime(np.where(found, secs, np.nan), unit="s", utc=True)
    if found.all() and CYCLE in feats:
        feats[CYCLE] = feats[CYCLE].astype("int64")
    out = pd.DataFrame(
        {ASSET_ID: pd.array(ids, dtype="string"), FOUND: found, FEATURE_TIMESTAMP: ts}
    )
    return pd.concat([out, feats], axis=1)


def push_features(
    settings: Settings,
    features_df: pd.DataFrame,
    *,
    offline: bool = True,
    store: FeatureStore | None = None,
) -> None:
    """Push fresh feature rows to the online store (PushSource) and the offline parquet.

    Online: store.push(..., to=PushMode.ONLINE). Offline: our own atomic append
    instead of PushMode.OFFLINE, because Feast's file offline store rewrites the
    parquet in place (a crash mid-write corrupts it) and insists on exact column
    order; the result is the same rows in the same file.
    """
    from feast.data_source import PushMode

    store = store or get_store(settings)
    df = _offline_frame(settings, features_df)
    store.push(push_source_name(settings.asset_type), df, to=PushMode.ONLINE)
    if offline:
        write_offline_features(settings, df, append=True)
