"""All-or-nothing file writes: a reader sees the old file or the new one, never half of one.

    with replacing(path) as tmp:       tmp = <dir of path>/.<name>.tmp-<host>-<pid>-<random>
        write tmp                      ─► fsync(tmp) ─► os.replace(tmp, path) ─► fsync(dir)
    an error inside the block          ─► tmp removed, `path` untouched
    a writer killed inside the block   ─► tmp left; the first write into that directory by
                                          the next process removes it (remove_orphans)

    write_bytes / write_text / write_parquet: the usual writers on top of `replacing`.
    sqlite_transaction(path, schema): the same promise for the small SQLite stores (alerts,
    the work-order outbox): a transaction commits whole or not at all.

Why the temp file sits beside `path`: os.replace is atomic only within one filesystem.
Why fsync the file before the rename: otherwise a crash shortly after it can leave `path`
naming an empty or partial file (the rename reached the disk before the data did).
Why fsync the directory after it: that is what makes the rename itself survive a crash.
Readers of these files (Feast joins, the drift checks, people opening reports) run in
other processes at any time, so every file twinops rewrites in place goes through here.
Why the writer's host and PID are in the temp name: a SIGKILL or a power cut runs no
cleanup (a killed materialize left a 6.6 MB parquet temp file), and only the name can say
later whether its writer is gone. A temp file of this host whose PID is not alive is an
orphan; one without that information (another host, the older `.tmp-<random>` name) is
taken for one once untouched for ORPHAN_AGE_S.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    import pandas as pd


#: A temp file whose writer cannot be identified is an orphan once untouched this long.
ORPHAN_AGE_S = 3600.0
_TMP = re.compile(r"^\..+\.tmp-(?:(?P<host>[A-Za-z0-9]*)-(?P<pid>\d+)-)?[0-9a-f]{32}$")
#: Directories swept by this process: once each (a directory listing per write is waste).
_swept: set[Path] = set()


@functools.cache
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:32]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_orphans(directory: str | os.PathLike[str], *, now: float | None = None) -> list[Path]:
    """Remove the temp files of `replacing` in `directory` whose writer is gone; the removed.

    Gone: written on this host by a PID that is not alive, or, when the name cannot say
    (another host, the older name without a PID), not modified for ORPHAN_AGE_S.
    A live writer's temp file is never touched: its PID is alive, or it is being written.
    """
    root = Path(directory)
    now = time.time() if now is None else now
    host, removed = _host(), []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return removed
    for entry in entries:
        match = _TMP.match(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        try:
            if match["pid"] is not None and match["host"] == host:
                orphan = not _alive(int(match["pid"]))
            else:
                orphan = now - entry.stat(follow_symlinks=False).st_mtime > ORPHAN_AGE_S
            if orphan:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except FileNotFoundError:  # its writer renamed or removed it meanwhile
            continue
    return removed


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside `path`; on a clean exit it replaces `path` (parents created).

    The first write of this process into a directory removes the orphans of dead writers
    there (remove_orphans)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.parent not in _swept:
        remove_orphans(target.parent)
        _swept.add(target.parent)
    tmp = target.with_name(f".{target.name}.tmp-{_host()}-{os.getpid()}-{uuid.uuid4().hex}")
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
