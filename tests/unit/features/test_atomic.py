"""features.atomic: a failed write leaves the old file and no temp file behind."""

from __future__ import annotations

import pandas as pd
import pytest

from features import atomic


def test_writers_replace_the_file_and_create_parents(tmp_path):
    path = tmp_path / "a" / "b" / "x.txt"
    assert atomic.write_text(path, "one") == path
    atomic.write_text(path, "two")
    assert path.read_text() == "two"
    atomic.write_bytes(path, b"three")
    assert path.read_bytes() == b"three"
    atomic.write_parquet(pd.DataFrame({"a": [1, 2]}), tmp_path / "x.parquet")
    assert pd.read_parquet(tmp_path / "x.parquet")["a"].tolist() == [1, 2]
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.txt"]


def test_failed_write_keeps_old_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "x.parquet"
    atomic.write_parquet(pd.DataFrame({"a": [1]}), path)

    class Boom(pd.DataFrame):
        def to_parquet(self, *a, **k):
            with open(a[0], "wb") as half:
                half.write(b"PAR1 half a file")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic.write_parquet(Boom({"a": [2]}), path)
    assert pd.read_parquet(path)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


def test_replacing_leaves_the_target_alone_until_the_block_ends(tmp_path):
    path = tmp_path / "report.html"
    path.write_text("old")
    with atomic.replacing(path) as tmp:
        assert tmp.parent == path.parent and tmp.name.startswith(".report.html.tmp-")
        tmp.write_text("new")
        assert path.read_text() == "old"
    assert path.read_text() == "new"


def test_sqlite_transaction_commits_whole_or_not_at_all(tmp_path):
    from features.atomic import sqlite_transaction

    db = tmp_path / "store.sqlite"
    schema = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY);"
    with sqlite_transaction(db, schema) as tx:
        tx.execute("INSERT INTO t VALUES ('a')")
    with pytest.raises(RuntimeError), sqlite_transaction(db, schema) as tx:
        tx.execute("INSERT INTO t VALUES ('b')")
        raise RuntimeError("crash between two writes")
    with sqlite_transaction(db, schema, write=False) as tx:
        assert [r["k"] for r in tx.execute("SELECT k FROM t")] == ["a"]


def _killed_writer(path) -> None:
    """A process that dies by SIGKILL in the middle of an atomic write (no cleanup runs)."""
    import subprocess
    import sys

    code = ("import os, signal, sys; from features import atomic\n"
            "with atomic.replacing(sys.argv[1]) as tmp:\n"
            "    tmp.write_bytes(b'PAR1 half a file')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], check=False)
    assert proc.returncode == -9


def test_a_killed_writers_temp_file_is_removed_by_the_next_write_there(tmp_path):
    target = tmp_path / "offline" / "features.parquet"
    _killed_writer(target)
    left = [p.name for p in target.parent.iterdir()]
    assert len(left) == 1 and left[0].startswith(".features.parquet.tmp-")  # the finding
    atomic.write_parquet(pd.DataFrame({"a": [1]}), target.parent / "other.parquet")
    assert sorted(p.name for p in target.parent.iterdir()) == ["other.parquet"]


def test_remove_orphans_keeps_live_writers_and_recent_unidentified_files(tmp_path):
    import os
    import subprocess
    import sys
    import time

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_pid.wait()
    host, hexes = atomic._host(), iter(f"{i:032x}" for i in range(10))
    try:
        names = {
            "live": f".a.parquet.tmp-{host}-{live.pid}-{next(hexes)}",
            "mine": f".a.parquet.tmp-{host}-{os.getpid()}-{next(hexes)}",
            "dead": f".a.parquet.tmp-{host}-{dead_pid.pid}-{next(hexes)}",
            "other_host_dead": f".a.parquet.tmp-elsewhere-{dead_pid.pid}-{next(hexes)}",
            "legacy_recent": f".a.parquet.tmp-{next(hexes)}",
            "legacy_old": f".b.json.tmp-{next(hexes)}",
            "not_ours": "a.parquet.tmp",
        }
        for name in names.values():
            (tmp_path / name).write_bytes(b"x")
        old = time.time() - atomic.ORPHAN_AGE_S - 60
        os.utime(tmp_path / names["legacy_old"], (old, old))
        removed = atomic.remove_orphans(tmp_path)
        assert sorted(p.name for p in removed) == sorted([names["dead"], names["legacy_old"]])
        kept = {p.name for p in tmp_path.iterdir()}
        assert kept == set(names.values()) - {names["dead"], names["legacy_old"]}
        assert atomic.remove_orphans(tmp_path / "missing") == []
    finally:
        live.kill()
        live.wait()
