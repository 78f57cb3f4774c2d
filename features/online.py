"""Fast read path of the Feast SQLite online store, for the serving hot path.

    Feast (writer, source of truth)                      serving (reader)
    materialize / push ─► <feast_dir>/online_store.db ─► OnlineReader.read(asset_ids)
                          table <project>_<view>            │ one indexed SELECT,
                          (entity_key, feature_name,        │ Feast's own key encoding
                           value=ValueProto, event_ts)      ▼ and ValueProto decoding
                                       OnlineRows (numpy) / .read(): the frame of
                                       features.store.online_features

Why not FeatureStore.get_online_features: it re-resolves the feature service
against the registry, builds entity protos, groups per view and converts the
response through several layers of Python objects on every call. That overhead
alone is several times the 2 ms p50 budget of POST /predict, while the store
itself is one indexed SQLite lookup; `twinops benchmark serve` prints both read
times (`feast_get_online_features_ms` / `fast_reader_ms`; figures in
docs/benchmarks.md#serving).

What stays Feast's: the table layout, the entity-key serialisation
(`serialize_entity_key` with the repo's serialisation version), the table name
(`compute_table_id`) and the value decoding (`ValueProto`), all taken from the
installed Feast at startup, so a Feast upgrade that changes any of them changes
this reader too. Feast remains the only writer. `tests/integration/
test_serving_http.py` proves the frame equals `online_features` (which goes
through get_online_features) value for value.

Only the SQLite online store has a fast path; for Redis `make_online_reader`
returns Feast's get_online_features wrapped in the same interface.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.contract import ASSET_ID, CYCLE
from features.store import FEATURE_TIMESTAMP, FOUND, feature_view_name

if TYPE_CHECKING:  # pragma: no cover
    from feast import FeatureStore

    from features.settings import Settings

OnlineFetcher = Callable[[Sequence[str]], pd.DataFrame]


@dataclass
class OnlineRows:
    """Online features without pandas: the hot path's shape (a DataFrame per request would
    cost a large share of the 2 ms p50 budget; docs/experiments.md#serving).

    values[i, j] is feature columns[j] of asset_ids[i] (NaN when not found);
    feature_ts[i] is the row's event time in epoch seconds (NaN when not found).
    """

    asset_ids: list[str]
    found: np.ndarray
    feature_ts: np.ndarray
    values: np.ndarray
    columns: list[str]

    def to_frame(self) -> pd.DataFrame:
        """The frame features.store.online_features returns for the same ids."""
        ts = pd.to_datetime(self.feature_ts, unit="s", utc=True)
        feats = pd.DataFrame(self.values, columns=self.columns)
        if len(self.asset_ids) and self.found.all() and CYCLE in feats:
            feats[CYCLE] = feats[CYCLE].astype("int64")
        out = pd.DataFrame({ASSET_ID: pd.array(self.asset_ids, dtype="string"),
                            FOUND: self.found, FEATURE_TIMESTAMP: ts})
        return pd.concat([out, feats], axis=1)


class SqliteOnlineReader:
    """Reads the latest feature row per asset straight from Feast's SQLite table.

    One read-only connection per thread (sqlite3 connections are not shared
    across threads); opened lazily, so building the reader does no I/O beyond
    what Feast did to describe the store.
    """

    def __init__(self, db_path: str, table: str, serialize_key: Callable[[str], bytes],
                 ttl: timedelta | None, columns: Sequence[str]):
        from feast.protos.feast.types.Value_pb2 import Value

        self.db_path = db_path
        self.table = table
        self.ttl = ttl
        self._serialize_key = serialize_key
        self._value_cls = Value
        self._local = threading.local()
        self.columns = list(columns)
        self._column_index = {c: j for j, c in enumerate(self.columns)}
        quoted = '"' + table.replace('"', '""') + '"'
        self._sql_one = (
            f"SELECT entity_key, feature_name, value, event_ts FROM {quoted} "
            "WHERE entity_key = ?"
        )
        self._sql_many = (
            f"SELECT entity_key, feature_name, value, event_ts FROM {quoted} "
            "WHERE entity_key IN ({})"
        )

    @classmethod
    def from_store(cls, store: FeatureStore, settings: Settings) -> SqliteOnlineReader:
        """The reader of settings' asset type (its feature view's table)."""
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.infra.online_stores.helpers import compute_table_id
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        config = store.config
        view = store.get_feature_view(feature_view_name(settings.asset_type))
        versioning = bool(getattr(config.registry, "enable_online_feature_view_versioning",
                                  False))
        table = compute_table_id(config.project, view, versioning)
        path = config.online_store.path
        if config.repo_path is not None and not str(path).startswith("/"):
            path = str(config.repo_path / path)
        version = config.entity_key_serialization_version

        def serialize(asset_id: str) -> bytes:
            key = EntityKey(join_keys=[ASSET_ID], entity_values=[Value(string_val=asset_id)])
            return serialize_entity_key(key, entity_key_serialization_version=version)

        ttl = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None
        from features.store import view_columns

        return cls(str(path), table, serialize, ttl, view_columns(settings))

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True,
                                   check_same_thread=False, timeout=5.0)
            self._local.conn = conn
        return conn

    def ping(self) -> None:
        """Raise if the store cannot be read (readiness probe)."""
        self._conn().execute(f"{self._sql_one} LIMIT 1", (b"",)).fetchall()

    def __call__(self, asset_ids: Sequence[str]) -> OnlineRows:
        return self.rows(asset_ids)

    def read(self, asset_ids: Sequence[str]) -> pd.DataFrame:
        """Same frame as features.store.online_features (columns, dtypes, order)."""
        return self.rows(asset_ids).to_frame()

    def rows(self, asset_ids: Sequence[str]) -> OnlineRows:
        """The latest feature row per asked asset, in order, as numpy arrays."""
        ids = [str(a) for a in asset_ids]
        keys = [self._serialize_key(a) for a in ids]
        if len(keys) == 1:
            rows = self._conn().execute(self._sql_one, keys).fetchall()
        elif keys:
            sql = self._sql_many.format(",".join("?" * len(keys)))
            rows = self._conn().execute(sql, keys).fetchall()
        else:
            rows = []
        position = {k: i for i, k in enumerate(keys)}
        values = np.full((len(ids), len(self.columns)), np.nan)
        found = np.zeros(len(ids), dtype=bool)
        stamps = np.full(len(ids), np.nan)
        value = self._value_cls()
        index = self._column_index
        for key, name, blob, ts in rows:
            j = index.get(name)
            if j is None:
                continue
            i = position[key]
            value.ParseFromString(blob)
            kind = value.WhichOneof("val")
            if kind is None:  # a null value: Feast answers None
                continue
            values[i, j] = getattr(value, kind)
            found[i] = True  # any stored value (a NaN feature of a missing sensor too)
            stamps[i] = float(ts)  # Feast's SQLite adapter stores integer epoch seconds
        return OnlineRows(ids, found, stamps, values, list(self.columns))


def make_online_reader(settings: Settings, store: FeatureStore | None = None):
    """The fastest reader of settings' asset type for the configured online store (SQLite:
    direct; else Feast)."""
    import functools

    from features.store import get_store, online_features

    store = store or get_store(settings)
    if settings.feast.online_store == "sqlite":
        return SqliteOnlineReader.from_store(store, settings)
    fetch = functools.partial(online_features, settings, store=store)
    name = feature_view_name(settings.asset_type)
    fetch.ping = lambda: store.get_feature_view(name)  # type: ignore[attr-defined]
    view = store.get_feature_view(name)
    fetch.ttl = view.ttl if view.ttl and view.ttl.total_seconds() > 0 else None  # type: ignore
    return fetch
