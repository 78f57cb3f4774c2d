"""Durable prediction log: every answered prediction, with the features it saw.

    POST /predict ─► predict_assets ─► PredictionLog.append([...])  (one transaction)
                                             │  SQLite file, WAL journal
    monitoring (drift, performance) ◄── PredictionLog.read(since, until) -> DataFrame

Why in features/: the log is data that two stages share — serving writes it,
monitoring reads it — and imports flow one way (features ← training ←
serving; monitoring uses features), so it lives at the bottom, beside the
other stores.

Why SQLite: it is embedded (no server), durable (a committed transaction
survives a crash), and in WAL mode many readers run beside one writer, so
several BentoML worker processes can append while `twinops monitor` reads.
Writers from different processes serialise on SQLite's file lock; the
`busy_timeout` makes them wait instead of failing.

Why features are one JSON text column: the feature set changes with the
model (new FeatureService, new window transform). A JSON column keeps old
rows readable after such a change; `read()` expands it back into one column
per feature, with NaN where a row did not have that feature.

Connections: one per process, opened lazily on first use (not at import,
not in __init__), and reopened after a fork (a SQLite connection must never
cross a fork). Threads of one process share it behind a lock.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.contract import PREDICTION_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

#: Output columns of a prediction, stored as REAL.
OUTPUT_COLUMNS: tuple[str, ...] = PREDICTION_COLUMNS
#: Identity columns of a prediction.
META_COLUMNS: tuple[str, ...] = ("logged_at", "asset_id", "model_name", "model_version", "horizon")
#: Bump when the table layout changes; stored in PRAGMA user_version.
SCHEMA_VERSION = 1

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS predictions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at      TEXT    NOT NULL,   -- UTC ISO-8601, fixed width: sorts as text
    asset_id       TEXT    NOT NULL,
    model_name     TEXT,
    model_version  TEXT,
    horizon        INTEGER,
    {", ".join(f"{c} REAL" for c in OUTPUT_COLUMNS)},
    features       TEXT    NOT NULL    -- JSON object {{feature: value}}
);
CREATE INDEX IF NOT EXISTS predictions_logged_at ON predictions (logged_at);
"""

_INSERT_COLUMNS = (*META_COLUMNS, *OUTPUT_COLUMNS, "features")
_INSERT = (
    f"INSERT INTO predictions ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})"
)


def utc_iso(ts: datetime | str | None = None) -> str:
    """UTC timestamp as fixed-width ISO text (microseconds, +00:00).

    Fixed width matters: rows are filtered by comparing these strings, which
    is only correct when every value has the same format. Naive datetimes are
    taken to be UTC.
    """
    if ts is None:
        ts = datetime.now(UTC)
    elif isinstance(ts, str):
        ts = datetime.fromisoformat(ts)
    elif not isinstance(ts, datetime):  # e.g. pandas.Timestamp is a datetime; others are not
        raise TypeError(f"expected datetime or ISO string, got {type(ts).__name__}")
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def _json_default(value: Any) -> Any:
    """Make numpy / pandas scalars and timestamps JSON-serialisable."""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return str(value)


def _real(value: Any) -> float | None:
    """A finite float or None (SQLite NULL): NaN never reaches the table."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class PredictionLog:
    """Append-only SQLite log of predictions. Safe across threads and processes."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 30.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid: int | None = None

    # ---- connection management -------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        """The process's connection, opened on first use and after a fork."""
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        # After a fork the inherited connection belongs to the parent: drop it
        # without closing (closing could disturb the parent's locks).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path,
            timeout=self.timeout_s,
            isolation_level=None,  # explicit BEGIN/COMMIT below
            check_same_thread=False,  # shared by threads, guarded by self._lock
        )
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout_s * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a committed append survives power loss, not only a crash.
        conn.execute("PRAGMA synchronous = FULL")
        conn.executescript(_SCHEMA)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._conn, self._pid = conn, os.getpid()
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn, self._pid = None, None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing ---------------------------------------------------------------
    @staticmethod
    def _row(record: Mapping[str, Any], default_time: str) -> tuple[Any, ...]:
        if not record.get("asset_id"):
            raise ValueError("prediction record without asset_id")
        features = record.get("features") or {}
        horizon = record.get("horizon")
        return (
            utc_iso(record["logged_at"]) if record.get("logged_at") else default_time,
            str(record["asset_id"]),
            None if record.get("model_name") is None else str(record["model_name"]),
            None if record.get("model_version") is None else str(record["model_version"]),
            None if horizon is None else int(horizon),
            *(_real(record.get(c)) for c in OUTPUT_COLUMNS),
            json.dumps(dict(features), default=_json_default, allow_nan=True),
        )

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append records in ONE transaction (all or nothing); returns the count.

        A record has `asset_id`, optional `logged_at` (default: now, the same
        for the whole batch), `model_name`, `model_version`, `horizon`, the
        output columns and `features` (a mapping feature -> value).
        """
        now = utc_iso()
        rows = [self._row(r, now) for r in records]
        if not rows:
            return 0
        with self._lock:
            conn = self._connection()
            # IMMEDIATE takes the write lock up front, so a busy database makes
            # us wait (busy_timeout) instead of failing half-way.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT, rows)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        return len(rows)

    # ---- reading ---------------------------------------------------------------
    def read(
        self,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        model_name: str | None = None,
    ) -> pd.DataFrame:
        """Rows with since <= logged_at < until (of one registered model, the model of one
        asset type, when `model_name` is given), oldest first, features expanded.

        Columns: logged_at (datetime64 UTC), asset_id, model_name,
        model_version, horizon, the outputs, then one column per feature seen
        in the selected rows. A feature whose name collides with one of those
        columns is prefixed with `feature.`.
        """
        import pandas as pd

        clauses, params = [], []
        if since is not None:
            clauses.append("logged_at >= ?")
            params.append(utc_iso(since))
        if until is not None:
            clauses.append("logged_at < ?")
            params.append(utc_iso(until))
        if model_name is not None:
            clauses.append("model_name = ?")
            params.append(str(model_name))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        columns = (*META_COLUMNS, *OUTPUT_COLUMNS, "features")
        sql = f"SELECT {', '.join(columns)} FROM predictions{where} ORDER BY logged_at, id"
        with self._lock:
            rows = self._connection().execute(sql, params).fetchall()

        base = pd.DataFrame.from_records(rows, columns=list(columns))
        parsed = [json.loads(text) for text in base.pop("features")]
        features = (
            pd.DataFrame.from_records(parsed, index=base.index)
            if any(parsed)
            else pd.DataFrame(index=base.index)
        )
        features = features.rename(
            columns={c: f"feature.{c}" for c in features.columns if c in base.columns}
        )
        out = pd.concat([base, features], axis=1)
        out["logged_at"] = pd.to_datetime(out["logged_at"], utc=True, format="ISO8601")
        out["horizon"] = out["horizon"].astype("float64")
        for c in OUTPUT_COLUMNS:
            out[c] = out[c].astype("float64")
        return out

    def count(self) -> int:
        with self._lock:
            return self._connection().execute("SELECT COUNT(*) FROM predictions").fetchone()[0]
