"""A state directory that was moved or copied keeps working: stored paths follow it.

    <state>/ROOT = the state dir it was written at
    open a store (get_store, training.registry._client) ─► ensure_state_root(settings)
        ROOT == state_dir ─► nothing (one small file read)
        else, under <state>/.relocate.lock (every process of the new place waits here):
            mlflow.db          every text value under file://<old>/ or <old>/ ─► <new>/...
                               (one sqlite transaction)
            feast/registry.db  every FileSource under <old>/ re-applied with the <new>/ path
                               (Feast's store.apply of its sources, views and services)
            ROOT ─► state_dir (written last, atomically: a crash before it redoes the
                               rewrite, which is idempotent)

Why it is needed: MLflow makes an artifact location absolute when it creates an
experiment, a run, a logged model or a model version, and a download (`load_version`)
reads model_versions.storage_location as stored; Feast's duckdb offline store reads a
FileSource's path as given, and a relative one resolves against the process's cwd, not
the repo. A copy would read the original's files (wrong data, in silence, while they
exist) or find nothing once they are gone.
Why by hand for MLflow: it has no call to change a stored artifact location (they are
immutable in its API), so the sqlite rows are rewritten with sqlite3; only values that
*start* with the old root are touched, so a path mentioned inside a longer text stays.
Why a ROOT file: it makes the common case, nothing moved, one read of a few bytes. A state
dir from before this file has none: its old root is read off the stores themselves (the
experiments' `<root>/mlartifacts`, the FileSources' `<root>/feast/offline/...`; twinops
creates every experiment there, so another location would be one made by hand).

Not rewritten, because they are history, not locations anything reads: the audit log,
reports' JSON, Prefect's run parameters and logs, work orders already proposed, Feast's
feature-view version history, and the informational `uri:` of an MLmodel file. A server
MLflow (`mlflow_tracking_uri` set) is not in the state dir and is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import sqlite3

    from features.settings import Settings

ROOT_FILE = "ROOT"
LOCK_FILE = ".relocate.lock"
_OFFLINE_IN_FEAST = re.compile(r"^(?P<root>/.*)/feast/offline/[^/]+$")
log = logging.getLogger(__name__)


def recorded_root(state_dir: Path) -> str | None:
    """The state dir recorded in <state>/ROOT, or None (a new or older state dir)."""
    try:
        return (state_dir / ROOT_FILE).read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_state_root(settings: Settings) -> list[str]:
    """Rewrite the stored absolute paths of a moved or copied state dir to where it is now.

    Called by every opener of the MLflow and Feast stores; cheap when nothing moved.
    Returns the old roots this call rewrote (none: nothing moved, or another process did it).
    """
    state_dir = Path(settings.state_dir)
    here = str(state_dir)
    if recorded_root(state_dir) == here:
        return []
    with _locked(state_dir):
        recorded = recorded_root(state_dir)  # another process may have done it meanwhile
        if recorded == here:
            return []
        db = _mlflow_db(settings)
        old_roots = sorted(({recorded} if recorded else _stored_roots(settings, db)) - {here})
        for old in old_roots:
            log.warning("state dir moved from %s to %s: rewriting its stored paths", old, here)
            if db is not None and db.exists():
                rewrite_sqlite_prefix(db, old, here)
            _rewrite_feast_sources(settings, old, here)
        from features import atomic

        atomic.write_text(state_dir / ROOT_FILE, here + "\n")
    return old_roots


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    """An flock on <state>/.relocate.lock: concurrent first starts rewrite once."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / LOCK_FILE, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _mlflow_db(settings: Settings) -> Path | None:
    """The embedded MLflow sqlite db, or None where MLflow is a server of its own."""
    return None if settings.mlflow_tracking_uri else Path(settings.state_dir) / "mlflow.db"


# ------------------------------------------------------------------ MLflow (sqlite)
def _root_forms(old: str, new: str) -> list[tuple[str, str]]:
    """(old, new) in the file URI form (MLflow's: percent-encoded) and the plain path form."""
    return [(Path(old).as_uri(), Path(new).as_uri()), (old, new)]


def rewrite_sqlite_prefix(db_path: Path, old: str, new: str) -> int:
    """In every text column of every table, replace a leading `old` root by `new`.

    One transaction (all rows or none); returns the number of values changed. Generic over
    the schema, not a list of MLflow's columns, so a column a later MLflow adds (a trace's
    artifact location) moves too.
    """
    import sqlite3

    changed = 0
    with contextlib.closing(sqlite3.connect(db_path, timeout=60, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            for table, column in _text_columns(db):
                col = f'"{column}"'
                for old_root, new_root in _root_forms(old, new):
                    # the root itself, or below it: the "/" keeps /a/state2 from matching
                    changed += db.execute(
                        f'UPDATE "{table}" SET {col} = ? || substr({col}, ?) '
                        f"WHERE typeof({col}) = 'text' AND "
                        f"({col} = ? OR substr({col}, 1, ?) = ?)",
                        (new_root, len(old_root) + 1, old_root, len(old_root) + 1,
                         old_root + "/"),
                    ).rowcount
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return changed


def _text_columns(db: sqlite3.Connection) -> list[tuple[str, str]]:
    tables = [r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return [(t, r[1]) for t in tables for r in db.execute(f'PRAGMA table_info("{t}")')]


def _mlflow_roots(db: Path | None) -> set[str]:
    """Roots the experiments were created under (`file://<root>/mlartifacts`)."""
    import sqlite3
    from urllib.parse import unquote, urlparse

    if db is None or not db.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        try:
            rows = conn.execute("SELECT artifact_location FROM experiments").fetchall()
        except sqlite3.OperationalError:  # no MLflow schema yet
            return set()
    roots = set()
    for (location,) in rows:
        parsed = urlparse(location or "")
        path = Path(unquote(parsed.path))
        if parsed.scheme == "file" and path.name == "mlartifacts":
            roots.add(str(path.parent))
    return roots


# ------------------------------------------------------------------ Feast registry
def _feast_registry(settings: Settings) -> Path:
    return Path(settings.feast_dir) / "registry.db"


def _move_source(source, prefix: str, new_prefix: str) -> bool:
    """Point a FileSource (or a push source's batch FileSource) under `prefix` at
    `new_prefix`, in place; True if it changed."""
    from feast import FileSource

    inner = getattr(source, "batch_source", None)  # a PushSource keeps its own copy
    moved = inner is not None and _move_source(inner, prefix, new_prefix)
    if isinstance(source, FileSource) and source.path.startswith(prefix):
        source.file_options.uri = new_prefix + source.path[len(prefix):]
        moved = True
    return moved


def _file_sources(store) -> list:
    """Every registered FileSource: the registry's own and those inside push sources and
    feature views (each keeps a copy of its batch source)."""
    from feast import FileSource

    found = []
    for source in [*store.list_data_sources(),
                   *(s for v in store.list_feature_views()
                     for s in (v.batch_source, v.stream_source))]:
        found += [source, getattr(source, "batch_source", None)]
    return [s for s in found if isinstance(s, FileSource)]


def _stored_roots(settings: Settings, db: Path | None) -> set[str]:
    """Old roots of a state dir without a ROOT file, read off the stores."""
    roots = _mlflow_roots(db)
    if _feast_registry(settings).exists():
        from features.store import open_store

        for source in _file_sources(open_store(settings)):
            match = _OFFLINE_IN_FEAST.match(source.path)
            if match:
                roots.add(match["root"])
    return roots


def _rewrite_feast_sources(settings: Settings, old: str, new: str) -> int:
    """Re-apply every data source, feature view and feature service that holds a FileSource
    under `old`, with that path under `new`, through Feast's store.apply as `twinops
    features` does (Feast keeps its registry consistent: the cache, the online tables).
    Returns the number of objects applied."""
    if not _feast_registry(settings).exists():
        return 0
    from features.store import open_store

    store = open_store(settings)
    prefix, new_prefix = old + "/", new + "/"
    sources = [s for s in store.list_data_sources() if _move_source(s, prefix, new_prefix)]
    # a list, not a generator, inside any(): both of a view's sources must be moved
    views = [v for v in store.list_feature_views()
             if any([_move_source(s, prefix, new_prefix)
                     for s in (v.batch_source, v.stream_source) if s is not None])]
    # a service's projection of a view keeps one more copy (not read in joins, but kept true)
    services = [f for f in store.list_feature_services()
                if any([_move_source(p.batch_source, prefix, new_prefix)
                        for p in f.feature_view_projections if p.batch_source is not None])]
    objects = [*sources, *views, *services]
    if objects:
        store.apply(objects)
    return len(objects)
