"""`twinops benchmark whatif`: its truth (the same live pump at the asked loading) and its
summary figures."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.whatif import summary


def test_the_truth_is_the_same_pump_and_a_harsher_loading_ends_it_sooner():
    from features.sources.pump import (
        LIVE_SEED_OFFSET,
        SETTING_COLUMNS,
        _loading,
        _unit_params,
        live_time_to_failure,
    )

    p = _unit_params(7 + LIVE_SEED_OFFSET, 0, False)
    now_s = 3600.0
    u = _loading(p, now_s)
    steady = {c: float(u[c]) for c in SETTING_COLUMNS}
    harsher = {**steady, "V": steady["V"] * 1.1, "wsync": steady["wsync"] * 1.1}
    calm, mode = live_time_to_failure(7, 0, now_s, steady)
    hot, _ = live_time_to_failure(7, 0, now_s, harsher)
    assert np.isfinite(calm) and mode
    assert 0 < hot < calm


def test_summary_reads_errors_coverage_modes_and_the_effect():
    def row(cur, req):
        return {"current": cur, "requested": req, "effect": req["rul"] / cur["rul"],
                "true_effect": req["true_rul"] / cur["true_rul"]}

    def side(rul, true, covered, mode="A"):
        return {"rul": rul, "true_rul": true, "relative_error": (rul - true) / true,
                "covered": covered, "mode": mode, "true_mode": "A"}

    rows = [row(side(11.0, 10.0, True), side(5.0, 5.0, True)),
            row(side(9.0, 10.0, False, "B"), side(4.0, 5.0, False))]
    s = summary(rows)
    assert s["current"]["median_abs_relative_error"] == pytest.approx(0.1)
    assert s["current"]["coverage"] == 0.5 and s["current"]["mode_right"] == 0.5
    assert s["requested"]["mean_relative_error"] == pytest.approx(-0.1)
    # effects 5/11 and 4/9 against a true 0.5 each
    assert s["effect_median_abs_error"] == pytest.approx(np.median([0.5 - 5 / 11, 0.5 - 4 / 9]))
