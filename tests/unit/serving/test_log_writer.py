"""BackgroundLogWriter: N appended -> N committed after flush/close; failures retried."""

from __future__ import annotations

import threading

from features.prediction_log import PredictionLog
from serving.log_writer import BackgroundLogWriter


def rec(i):
    return {"asset_id": f"a{i}", "model_version": "1", "rul": float(i), "features": {"x": i}}


def test_concurrent_appends_are_all_committed_on_close(tmp_path):
    writer = BackgroundLogWriter(PredictionLog(tmp_path / "p.sqlite"), max_queue=8)

    def work(t):
        for j in range(50):
            writer.append([rec(t * 1000 + j)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    df = PredictionLog(tmp_path / "p.sqlite").read()
    assert len(df) == 400 and df["asset_id"].is_unique
    assert writer.written == 400


def test_flush_makes_rows_visible_and_logged_at_is_the_request_time(tmp_path):
    from datetime import UTC, datetime

    writer = BackgroundLogWriter(PredictionLog(tmp_path / "p.sqlite"))
    before = datetime.now(UTC)
    writer.append([rec(1), rec(2)])
    assert writer.flush(10)
    df = PredictionLog(tmp_path / "p.sqlite").read()
    assert len(df) == 2 and (df["logged_at"] >= before).all()
    writer.close()


class FlakyLog:
    def __init__(self, inner, failures):
        self.inner, self.failures = inner, failures

    def append(self, rows):
        if self.failures:
            self.failures -= 1
            raise OSError("disk busy")
        return self.inner.append(rows)


def test_a_failed_commit_is_retried_not_dropped(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    writer = BackgroundLogWriter(FlakyLog(log, failures=2), retry_s=0.01)
    writer.append([rec(i) for i in range(5)])
    writer.close()
    assert log.count() == 5 and writer.failures == 2


def test_a_malformed_record_does_not_block_the_others(tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    writer = BackgroundLogWriter(log)
    writer.append([rec(1), {"asset_id": ""}, rec(2)])
    writer.close()
    assert sorted(log.read()["asset_id"]) == ["a1", "a2"]
