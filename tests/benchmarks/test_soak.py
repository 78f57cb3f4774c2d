"""`twinops benchmark soak`: its per-minute figures, memory growth and checks."""

from __future__ import annotations

import math

import pytest

from benchmarks.soak import checks, memory_growth, per_minute


def test_per_minute_counts_errors_and_takes_quantiles_of_the_200s_only():
    samples = [(5.0, 1.0, "200"), (30.0, 3.0, "200"), (59.9, 99.0, "ReadError"),
               (61.0, 2.0, "200"), (90.0, 500.0, "503")]
    first, second = per_minute(samples)
    assert (first["minute"], first["requests"], first["errors"]) == (0, 3, 1)
    assert first["p50_ms"] == 3.0 and first["p99_ms"] == 3.0  # the failed 99 ms is not in it
    assert (second["requests"], second["errors"], second["p99_ms"]) == (2, 1, 2.0)


def test_memory_growth_compares_last_minute_to_first_minute_after_warmup():
    flat = [(t, 1, 100) for t in range(0, 600, 5)]
    growing = [(t, 2, 100 + t) for t in range(0, 600, 5)]
    restarted = [(t, 3, 100) for t in range(500, 600, 5)]
    growth = memory_growth(flat + growing + restarted, warmup_s=60)
    assert growth["1"] == 0.0
    # first minute after warm-up: 60..115 (median 187.5); last minute 535..595 (median 665)
    assert growth["2"] == pytest.approx(665 / 187.5 - 1)
    assert math.isinf(growth["3"])


def test_checks_fail_on_any_error_growth_missing_log_row_or_rate_shortfall():
    good = {"errors": 0, "ingest_errors": 0, "memory_growth": {"1": 0.02}, "logged_rows": 10,
            "ok": 10, "answered_rate": 199.0, "rate": 200.0}
    assert all(checks(good).values())
    assert not checks({**good, "ingest_errors": 1})["zero_errors"]
    assert not checks({**good, "memory_growth": {"1": 0.02, "2": 0.11}})["memory_flat"]
    assert not checks({**good, "memory_growth": {}})["memory_flat"]
    assert not checks({**good, "logged_rows": 9})["prediction_log_complete"]
    assert not checks({**good, "answered_rate": 150.0})["rate_held"]
