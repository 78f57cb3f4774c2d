"""features.relocate: a moved state dir's stored paths follow it, once, and nothing else moves.

The Feast half needs a real registry and is covered by tests/integration/test_state_move.py;
here the sqlite rewrite and the ROOT bookkeeping, on a small db shaped like MLflow's.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from features.relocate import ROOT_FILE, ensure_state_root, recorded_root, rewrite_sqlite_prefix
from features.settings import Settings


@pytest.fixture(autouse=True)
def _no_config(monkeypatch, tmp_path):
    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "none.yaml"))


def _db(path: Path, rows: list[tuple]) -> Path:
    with closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, artifact_location TEXT, "
                   "note VARCHAR(200), size INTEGER)")
        db.executemany("INSERT INTO experiments (artifact_location, note, size) VALUES (?,?,?)",
                       rows)
        db.commit()
    return path


def _column(path: Path, column: str) -> list:
    with closing(sqlite3.connect(path)) as db:
        return [r[0] for r in db.execute(f"SELECT {column} FROM experiments ORDER BY id")]


def test_rewrite_replaces_a_leading_root_only(tmp_path):
    old, new = "/old place/state", "/new/state"
    db = _db(tmp_path / "m.db", [
        (Path(old, "mlartifacts").as_uri(), f"{old}/reports/x.html", 1),  # URI, plain path
        (Path(old).as_uri(), old, 2),                                       # the root itself
        ("file:///old place/state2/mlartifacts", "/old place/state2/x", 3),  # a sibling
        ("s3://bucket/mlartifacts", f"see {old}/x", 4),                     # mid-text: history
        (None, None, 5),
    ])
    assert rewrite_sqlite_prefix(db, old, new) == 4
    assert _column(db, "artifact_location") == [
        "file:///new/state/mlartifacts", "file:///new/state",
        "file:///old place/state2/mlartifacts", "s3://bucket/mlartifacts", None]
    assert _column(db, "note") == ["/new/state/reports/x.html", "/new/state",
                                   "/old place/state2/x", f"see {old}/x", None]
    assert _column(db, "size") == [1, 2, 3, 4, 5]
    assert rewrite_sqlite_prefix(db, old, new) == 0  # idempotent


def _settings(root: Path) -> Settings:
    return Settings(state_dir=root / "state", data_dir=root / "data")


def _mlflow_like_state(root: Path, written_at: Path, *, record: bool) -> Settings:
    settings = _settings(root)
    settings.state_dir.mkdir(parents=True)
    _db(settings.state_dir / "mlflow.db",
        [(Path(written_at, "state", "mlartifacts").as_uri(), None, 0)])
    if record:
        (settings.state_dir / ROOT_FILE).write_text(f"{written_at / 'state'}\n")
    return settings


@pytest.mark.parametrize("record", [True, False], ids=["ROOT file", "older state: no ROOT"])
def test_a_moved_state_dir_is_rewritten_once_and_recorded(tmp_path, record):
    settings = _mlflow_like_state(tmp_path / "new", tmp_path / "old", record=record)
    db = settings.state_dir / "mlflow.db"

    assert ensure_state_root(settings) == [str(tmp_path / "old" / "state")]
    assert _column(db, "artifact_location") == [settings.artifact_root.as_uri()]
    assert recorded_root(settings.state_dir) == str(settings.state_dir)
    assert ensure_state_root(settings) == []  # recorded: the cheap path from now on


def test_a_new_state_dir_records_its_root_and_rewrites_nothing(tmp_path):
    settings = _settings(tmp_path)
    assert ensure_state_root(settings) == []
    assert recorded_root(settings.state_dir) == str(settings.state_dir)


def test_a_server_mlflow_is_not_touched(tmp_path):
    settings = _mlflow_like_state(tmp_path / "new", tmp_path / "old", record=True)
    settings = settings.model_copy(update={"mlflow_tracking_uri": "http://mlflow:5000"})
    ensure_state_root(settings)
    assert _column(settings.state_dir / "mlflow.db", "artifact_location") == [
        Path(tmp_path, "old", "state", "mlartifacts").as_uri()]
    assert recorded_root(settings.state_dir) == str(settings.state_dir)


def _start_in(root: str, start, results) -> None:
    start.wait()
    results.put(ensure_state_root(_settings(Path(root))))


def test_concurrent_first_starts_rewrite_once(tmp_path):
    settings = _mlflow_like_state(tmp_path / "new", tmp_path / "old", record=True)
    ctx = multiprocessing.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_start_in, args=(str(tmp_path / "new"), start, results))
             for _ in range(4)]
    for p in procs:
        p.start()
    start.set()
    rewrote = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert sorted(map(len, rewrote)) == [0, 0, 0, 1]
    assert _column(settings.state_dir / "mlflow.db", "artifact_location") == [
        settings.artifact_root.as_uri()]
