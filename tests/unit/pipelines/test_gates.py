"""The promotion gates are a pure function: each rule can pass and can fail."""

from __future__ import annotations

import pytest

from features.settings import ReviewSettings
from pipelines import gates as G

GOOD_PHYSICS = {"min_rul": 0.0, "min_health": 0.02, "max_health": 0.99,
                "damage_reversal_share": 0.01, "time_consistency_residual": 1.2}
CHAMPION = {"rmse": 20.0, "phm08_score": 1000.0, "coverage": 0.9}
#: what `fit` logged: held-out RMSE and that of a constant-RUL predictor on the same rows
TRAINING = {"val_rmse": 18.0, "val_constant_rmse": 40.0}


def review_gates(metrics, physics, champion, rules, *, training=TRAINING, ratio=0.9):
    return G.review_gates(metrics, physics, champion, rules, training_metrics=training,
                          max_rmse_ratio=ratio)


def failing(result) -> set[str]:
    return {c.name for c in result.checks if not c.passed}


def test_equal_candidate_passes_and_no_champion_skips_comparison():
    rules = ReviewSettings()
    assert review_gates(dict(CHAMPION), GOOD_PHYSICS, CHAMPION, rules).passed
    result = review_gates(dict(CHAMPION), GOOD_PHYSICS, None, rules)
    assert result.passed and "skipped" in result.checks[1].detail
    assert [c.name for c in result.checks][:1] == [G.FLOOR]  # the floor applies regardless


@pytest.mark.parametrize(
    ("metrics", "physics", "expected"),
    [
        ({"rmse": 21.5}, {}, {"rmse vs champion"}),  # 7.5% worse > 5% tolerance
        ({"phm08_score": 1300.0}, {}, {"phm08 score vs champion"}),
        ({"coverage": 0.6}, {}, {"interval coverage"}),
        ({"coverage": 1.0}, {}, {"interval coverage"}),
        ({}, {"min_rul": -0.5}, {"RUL >= 0"}),
        ({}, {"max_health": 1.2}, {"health in [0, 1]"}),
        ({}, {"damage_reversal_share": 0.3}, {"monotone damage"}),
        ({}, {"time_consistency_residual": 9.0}, {"time consistency"}),
    ],
)
def test_each_rule_fails_on_its_own(metrics, physics, expected):
    result = review_gates({**CHAMPION, **metrics}, {**GOOD_PHYSICS, **physics}, CHAMPION,
                          ReviewSettings())
    assert not result.passed
    assert failing(result) == expected
    assert all(f.split(":")[0] in expected for f in result.failures)


def test_tolerances_come_from_config():
    worse = {**CHAMPION, "rmse": 21.5}
    assert not review_gates(worse, GOOD_PHYSICS, CHAMPION, ReviewSettings()).passed
    assert review_gates(worse, GOOD_PHYSICS, CHAMPION, ReviewSettings(rmse_tolerance=0.1)).passed


@pytest.mark.parametrize(
    ("training", "ratio", "passed", "detail"),
    [
        (TRAINING, 0.9, True,
         "held-out rmse all rows 18.00 <= 36.00 (0.9 x constant predictor 40.00)"),
        ({"val_rmse": 39.0, "val_constant_rmse": 40.0}, 0.9, False,
         "held-out rmse all rows 39.00 > 36.00 (0.9 x constant predictor 40.00)"),
        ({"val_rmse": 39.0, "val_constant_rmse": 40.0}, 1.0, True,
         "held-out rmse all rows 39.00 <= 40.00 (1 x constant predictor 40.00)"),
        # the cut validation, where the run has it, decides (all rows would have passed)
        ({"val_rmse": 10.0, "val_constant_rmse": 40.0, "val_cut_rmse": 39.0,
          "val_cut_constant_rmse": 40.0}, 0.9, False,
         "held-out rmse at random cuts of life 39.00 > 36.00"),
        ({"val_rmse": float("nan"), "val_constant_rmse": 40.0}, 0.9, False, "nothing to compare"),
        ({"val_rmse": 10.0}, 0.9, False, "nothing to compare"),
    ],
)
def test_the_floor_is_one_named_gate(training, ratio, passed, detail):
    check = G.floor_gate(training, ratio)
    assert (check.name, check.passed) == (G.FLOOR, passed) and detail in check.detail


def test_a_failing_floor_fails_the_review_with_its_reason_alone():
    """A version the review gates would pass is still rejected below the floor."""
    below = {"val_rmse": 39.0, "val_constant_rmse": 40.0}
    for champion in (None, CHAMPION):
        result = review_gates(dict(CHAMPION), GOOD_PHYSICS, champion, ReviewSettings(),
                              training=below)
        assert not result.passed and failing(result) == {G.FLOOR}
        assert result.failures == [f"{G.FLOOR}: held-out rmse all rows 39.00 > 36.00 "
                                   "(0.9 x constant predictor 40.00)"]


def test_the_champion_comparison_reads_the_cut_validation_when_both_have_it():
    """Better on every row but worse at random cuts of life (as a unit in service is
    judged): rejected; without cut figures on both sides the all-rows ones decide."""
    champion = {**CHAMPION, "cut_rmse": 30.0, "cut_phm08_per_unit": 5.0, "cut_coverage": 0.9}
    cand = {**CHAMPION, "rmse": CHAMPION["rmse"] * 0.8, "cut_rmse": 36.0,
            "cut_phm08_per_unit": 5.0, "cut_coverage": 0.9}
    result = review_gates(cand, GOOD_PHYSICS, champion, ReviewSettings())
    assert failing(result) == {"rmse vs champion"}
    assert review_gates({k: v for k, v in cand.items() if not k.startswith("cut_")},
                        GOOD_PHYSICS, champion, ReviewSettings()).passed
