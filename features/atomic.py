"""All-or-nothing file writes: a reader sees the old file or the new one, never half of one.

    with replacing(path) as tmp:       tmp = <dir of path>/.<name>.tmp-<random>
        write tmp                      ─► fsync(tmp) ─► os.replace(tmp, path) ─► fsync(dir)
    an error inside the block          ─► tmp removed, `path` untouched

    write_bytes / write_text / write_parquet: the usual writers on top of `replacing`.
    sqlite_transaction(path, schema): the same promise for the small SQLite stores (alerts,
    the work-order outbox): a transaction commits whole or not at all.

Why the temp file sits beside `path`: os.replace is atomic only within one filesystem.
Why fsync the file before the rename: otherwise a crash shortly after it can leave `path`
naming an empty or partial file (the rename reached the disk before the data did).
Why fsync the directory after it: that is what makes the rename itself survive a crash.
Readers of these files (Feast joins, the drift checks, people opening reports) run in
other processes at any time, so every file twinops rewrites in place goes through here.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; on a clean exit it replaces `path` (parents created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{uuid.uuid4().hex}")
    try:
        yield tmp
        _fsync(tmp, os.O_RDONLY)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Replace `path` with `data`; returns the path."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Replace `path` with `text`; returns the path."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return Path(path)


def write_parquet(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Replace `path` with `df` as parquet (no index); returns the path."""
    with replacing(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


@contextlib.contextmanager
def sqlite_transaction(path: str | os.PathLike[str], schema: str, *,
                       write: bool = True) -> Iterator[sqlite3.Connection]:
    """One SQLite transaction on `path` (created with `schema`, idempotent DDL): committed on
    a clean exit, rolled back on an error. A writer takes the write lock at once (BEGIN
    IMMEDIATE), so a read-then-write is never interleaved with another process's; WAL lets
    readers (the CLI) run beside a writer; synchronous=FULL makes a commit survive a power
    loss, which is what "stored" means for an alert or a work order. Rows are sqlite3.Row."""
    import sqlite3
    from contextlib import closing

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
