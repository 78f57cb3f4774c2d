"""PredictionLog: durable, all-or-nothing appends; safe across threads and processes."""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from features.prediction_log import PredictionLog, utc_iso


def record(i: int, **extra):
    return {
        "asset_id": f"a{i}",
        "model_name": "twinops-rul",
        "model_version": "3",
        "horizon": 30,
        "rul": 100.0 - i,
        "rul_lower": 90.0 - i,
        "rul_upper": 110.0 - i,
        "interval_level": 0.9,
        "p_fail": 0.1,
        "health": 0.8,
        "features": {"cycle": i, "sensor_2_mean": 642.5 + i},
        **extra,
    }


def test_n_appends_give_n_rows_with_features_expanded(tmp_path):
    log = PredictionLog(tmp_path / "log" / "predictions.sqlite")  # parent dir created lazily
    assert not (tmp_path / "log").exists()  # nothing opened in __init__
    for i in range(5):
        assert log.append([record(i)]) == 1
    assert log.append([record(5), record(6)]) == 2
    df = log.read()
    assert len(df) == 7 == log.count()
    assert list(df["asset_id"]) == [f"a{i}" for i in range(7)]
    assert df["cycle"].tolist() == list(range(7))
    assert df.loc[3, "sensor_2_mean"] == pytest.approx(645.5)
    assert df.loc[0, "rul"] == 100.0 and df.loc[0, "model_version"] == "3"
    assert str(df["logged_at"].dt.tz) == "UTC"
    # WAL journal, so readers run beside a writer
    with sqlite3.connect(tmp_path / "log" / "predictions.sqlite") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_feature_schema_may_change_between_rows(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    log.append([record(0)])
    log.append([{**record(1), "features": {"cycle": 1, "new_feature": 2.5, "rul": 7}}])
    df = log.read()
    assert math.isnan(df.loc[0, "new_feature"]) and df.loc[1, "new_feature"] == 2.5
    assert math.isnan(df.loc[1, "sensor_2_mean"])
    assert df.loc[1, "feature.rul"] == 7  # a feature named like an output keeps both
    assert df.loc[1, "rul"] == 99.0


def test_nan_outputs_and_numpy_features_are_stored(tmp_path):
    import numpy as np

    log = PredictionLog(tmp_path / "p.sqlite")
    log.append(
        [
            {
                **record(0),
                "rul_lower": float("nan"),
                "features": {"x": np.float32(1.5), "n": np.int64(3)},
            }
        ]
    )
    df = log.read()
    assert math.isnan(df.loc[0, "rul_lower"])
    assert df.loc[0, "x"] == 1.5 and df.loc[0, "n"] == 3


def test_append_is_one_transaction(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    with pytest.raises(ValueError):
        log.append([record(0), {"asset_id": ""}])  # second record invalid
    assert log.count() == 0
    assert log.append([]) == 0


def test_read_filters_by_time(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    log.append([record(i, logged_at=t0 + timedelta(hours=i)) for i in range(10)])
    assert len(log.read(since=t0 + timedelta(hours=3))) == 7
    assert len(log.read(until=t0 + timedelta(hours=3))) == 3  # until is exclusive
    window = log.read(since=t0 + timedelta(hours=2), until=t0 + timedelta(hours=5))
    assert window["asset_id"].tolist() == ["a2", "a3", "a4"]
    # other time zones and ISO strings compare correctly (everything stored as UTC)
    cet = datetime(2026, 1, 1, 5, tzinfo=UTC).astimezone(
        __import__("zoneinfo").ZoneInfo("Europe/Berlin")
    )
    assert len(log.read(since=cet)) == 5
    assert len(log.read(since="2026-01-01T08:00:00+00:00")) == 2
    assert log.read(since=t0 + timedelta(days=1)).empty


def test_utc_iso_is_fixed_width():
    a = utc_iso(datetime(2026, 1, 1, tzinfo=UTC))
    b = utc_iso(datetime(2026, 1, 1, 0, 0, 0, 5, tzinfo=UTC))
    assert len(a) == len(b) and a < b
    assert utc_iso(datetime(2026, 1, 1)) == a  # naive = UTC


def test_concurrent_threads_lose_nothing(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    errors = []

    def work(t):
        try:
            for j in range(25):
                log.append([record(t * 1000 + j * 10 + k) for k in range(4)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    df = log.read()
    assert len(df) == 8 * 25 * 4
    assert df["asset_id"].is_unique


def _process_work(log: PredictionLog, p: int, n: int) -> None:
    for j in range(n):
        log.append([record(p * 1000 + j * 10 + k) for k in range(3)])
    # The child's job ends when its rows are committed. Leave without running the exit
    # handlers inherited from the parent: in a full suite run the parent has run Prefect
    # in-process, and its inherited logging/finalizer hooks made forked children exit 1.
    os._exit(0)


def test_concurrent_processes_lose_nothing(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    log.append([record(999_999)])  # parent opens its connection before forking
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_process_work, args=(log, p, 20)) for p in range(4)]
    for pr in procs:
        pr.start()
    for pr in procs:
        pr.join(60)
    assert [pr.exitcode for pr in procs] == [0, 0, 0, 0]
    log.append([record(888_888)])  # parent's connection still works after the children
    df = PredictionLog(tmp_path / "p.sqlite").read()  # a fresh reader sees everything
    assert len(df) == 1 + 4 * 20 * 3 + 1
    assert df["asset_id"].is_unique
