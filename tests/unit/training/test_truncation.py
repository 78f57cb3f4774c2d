"""The cut validation: random cuts inside each held-out unit's life, scored at the cut."""

import numpy as np
import pandas as pd
import pytest

from training.truncation import (
    CUT_LIFE_SHARE,
    band_coverage,
    band_names,
    cut_metrics,
    cut_weights,
)


def _units(lives=(10, 40, 200), shuffle=True):
    rows = [(f"u{i}", c, float(life - c)) for i, life in enumerate(lives)
            for c in range(1, life + 1)]
    df = pd.DataFrame(rows, columns=["asset_id", "cycle", "rul"])
    return df.sample(frac=1.0, random_state=0) if shuffle else df


def test_cuts_lie_inside_each_units_life_share_and_weigh_units_equally():
    df = _units()
    w = cut_weights(df["asset_id"], df["cycle"], df["rul"])
    share = df["cycle"] / (df["cycle"] + df["rul"])
    lo, hi = CUT_LIFE_SHARE
    assert (w[(share < lo) | (share > hi)] == 0).all()
    assert (w[(share >= lo) & (share <= hi)] > 0).all()
    per_unit = pd.Series(w).groupby(df["asset_id"].to_numpy()).sum()
    np.testing.assert_allclose(per_unit.to_numpy(), 1.0)
    # never at or past the failure: a cut leaves RUL > 0 to predict
    assert (df["rul"].to_numpy()[w > 0] > 0).all()


def test_weights_are_the_expected_error_of_a_random_cut():
    df = _units(shuffle=False)
    err = np.random.default_rng(1).normal(0, 5, len(df))
    w = cut_weights(df["asset_id"], df["cycle"], df["rul"])
    exact = np.sqrt(np.sum(w * err**2) / w.sum())
    rng = np.random.default_rng(2)
    share = df["cycle"] / (df["cycle"] + df["rul"])
    inside = (share >= CUT_LIFE_SHARE[0]) & (share <= CUT_LIFE_SHARE[1])
    draws = []
    for _ in range(4000):  # one uniform cut per unit, units weighted equally
        idx = [rng.choice(np.flatnonzero(inside & (df["asset_id"] == u).to_numpy()))
               for u in df["asset_id"].unique()]
        draws.append(np.mean(err[idx] ** 2))
    assert exact == pytest.approx(np.sqrt(np.mean(draws)), rel=0.03)


def test_a_unit_too_short_for_the_share_is_scored_at_its_last_row_and_unlabelled_never():
    df = pd.DataFrame({"asset_id": ["a", "a", "b", "b"], "cycle": [1, 2, 1, 2],
                       "rul": [1.0, 0.0, np.nan, np.nan]})
    w = cut_weights(df["asset_id"], df["cycle"], df["rul"], share=(0.3, 0.4))
    np.testing.assert_array_equal(w, [0.0, 1.0, 0.0, 0.0])


def test_hours_units_use_the_rul_per_cycle():
    # 10 readings of 0.5 h: life 5 h; the share is of cycles, not of hours
    df = pd.DataFrame({"asset_id": "p", "cycle": np.arange(1, 11),
                       "rul": (10 - np.arange(1, 11)) * 0.5})
    w = cut_weights(df["asset_id"], df["cycle"], df["rul"], per_cycle=0.5)
    assert w[:2].sum() == 0 and w[2:].sum() == pytest.approx(1.0)  # cycles 3..9 of 10


def test_cut_metrics_report_bands_and_the_units_whose_interval_misses():
    ids = np.array(["a", "a", "b", "b"])
    y = np.array([10.0, 30.0, 60.0, 150.0])
    pred = y + np.array([1.0, -1.0, 20.0, 20.0])
    lo, hi = pred - 5, pred + 5
    m = cut_metrics(ids, y, pred, lo, hi, np.full(4, 0.5), cap=125)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 1 + 400 + 400) / 4))
    assert m["coverage"] == 0.5 and m["units_missed"] == 0.5  # unit b: every cut missed
    assert m["coverage_0-25"] == 1 and m["coverage_50-125"] == 0 and m["coverage_125-inf"] == 0
    assert band_coverage(y, lo, hi, 125)["coverage_25-50"] == 1
    assert "phm08_per_unit" not in cut_metrics(ids, y, pred, lo, hi, np.ones(4), 125,
                                               phm08=False)


def test_the_bands_are_the_same_stages_of_life_at_any_cap():
    assert band_names(125) == ["coverage_0-25", "coverage_25-50", "coverage_50-125",
                               "coverage_125-inf"]  # the C-MAPSS bands
    assert band_names(8) == ["coverage_0-1.6", "coverage_1.6-3.2", "coverage_3.2-8",
                             "coverage_8-inf"]  # a pump capped at 8 h
    y = np.array([1.0, 2.0, 5.0, 9.0])
    cov = band_coverage(y, y - 0.5, y + 0.5, 8)
    assert all(cov[b] == 1 for b in band_names(8))  # each band holds one row, covered
