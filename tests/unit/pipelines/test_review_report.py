"""The review report on synthetic evidence: the headline, the configuration and data diff, the
per-asset table and the labels say what the evidence says, at the gates' scoring."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from features.settings import ReviewSettings
from pipelines import review_compare as C
from pipelines.evidence import Evidence, ModelEvidence
from pipelines.gates import review_gates
from pipelines.review_report import render_html, version_description
from training import metrics as M
from training.truncation import cut_metrics, cut_weights

CAP = 125.0
UNITS = [f"u{i}" for i in range(1, 7)]
PARAMS = {"feature_set": "all", "physics_variant": "physics", "max_epochs": "40",
          "learning_rate": "0.002", "n_members": "4", "rul_cap": "125.0", "interval_level": "0.9"}
GOOD_PHYSICS = {"min_rul": 0.0, "min_health": 0.02, "max_health": 0.99,
                "damage_reversal_share": 0.01, "time_consistency_residual": 1.2}


def model(version: str, *, extra=lambda unit, true: 0.0, params=None, units=UNITS,
          physics=None, dvc="abc123def456", seed=0) -> ModelEvidence:
    """A model predicting min(true, cap) + noise + `extra(unit, true)` on run-to-failure
    units of 150-250 cycles, with the metrics the gates read computed from those rows."""
    rng = np.random.default_rng(seed)
    frames = []
    for i, unit in enumerate(UNITS):
        life = 150 + 20 * i
        cycle = np.arange(1, life + 1, dtype=float)
        true = life - cycle
        off = np.array([extra(unit, t) for t in true])
        rul = np.minimum(true, CAP) + rng.normal(0, 3, life) + off
        # intervals of +-5 (coverage near 0.9), widened by the extra error
        frames.append(pd.DataFrame({"asset_id": unit, "cycle": cycle, "true_rul": true,
                                    "rul": rul, "rul_lower": rul - 5 - off, "rul_upper": rul + 5,
                                    "health": np.clip(rul / CAP, 0, 1)}))
    p = pd.concat(frames, ignore_index=True)
    p["cut_weight"] = cut_weights(p.asset_id, p.cycle, p.true_rul)
    y, pred = p.true_rul.to_numpy(), p.rul.to_numpy()
    metrics = {f"cut_{k}": v for k, v in cut_metrics(p.asset_id, y, pred, p.rul_lower,
                                                      p.rul_upper, p.cut_weight, CAP).items()}
    capped = np.minimum(y, CAP)
    metrics |= {"rmse": M.rmse(capped, pred), "phm08_score": M.phm08_score(capped, pred),
                "coverage": M.interval_coverage(y, p.rul_lower, p.rul_upper),
                "n_rows": float(len(p))}
    return ModelEvidence(
        version=version, metrics=metrics, rmse_by_band={"0-25": 3.0}, physics=physics or
        GOOD_PHYSICS, calibration={0.5: 0.45, 0.9: 0.88}, predictions=p,
        tags={"dvc_data_hash": dvc, "feature_service": "rul_v1", "git_commit": "f00"},
        run_id=f"run{version}", params={**PARAMS, **(params or {})}, run_user="alice",
        training_metrics={"val_cut_rmse": 10.0, "val_cut_constant_rmse": 40.0, "epochs": 40.0},
        trained_units=list(units))


def late_mid_life(unit, true):
    """Off by 10 cycles late at true RUL 25-75 on every unit, more on u4."""
    return (10.0 + 30 * (unit == "u4")) if 25 <= true < 75 else 0.0


def gates_of(ev: Evidence):
    return review_gates(ev.candidate.metrics, ev.candidate.physics,
                        ev.champion.metrics if ev.champion else None, ReviewSettings(),
                        training_metrics=ev.candidate.training_metrics, max_rmse_ratio=0.9)


@pytest.fixture(scope="module")
def worse():
    ev = Evidence(candidate=model("3", extra=late_mid_life, seed=1,
                                  params={"max_epochs": "1", "learning_rate": "0.0001"},
                                  physics={**GOOD_PHYSICS, "max_health": 0.821}),
                  champion=model("1"), units=UNITS, data_hash="abc123def456")
    return ev, gates_of(ev)


@pytest.fixture(scope="module")
def page(worse):
    return render_html(*worse, model_name="twinops-rul-turbofan", run_uri="runs:/run3")


def test_headline_says_how_much_worse_where_what_changed_and_that_gates_refuse(worse, page):
    ev, gates = worse
    assert not gates.passed
    rel = ev.candidate.metrics["cut_rmse"] / ev.champion.metrics["cut_rmse"] - 1
    line = C.headline(ev, gates)
    assert line.startswith(f"v3 is {rel:.0%} worse than v1 in RMSE at the cut points")
    assert "mostly at true RUL 25–75" in line
    assert "max_epochs 1 (v1: 40)" in line and "learning_rate 0.0001 (v1: 0.002)" in line
    assert "on the same data" in line
    assert line.endswith("the gates refuse it (rmse vs champion, phm08 score vs champion): "
                         "do not approve.")
    assert re.search(r'<p class="headline fail">v3 is \d+% worse', page)
    assert page.index('class="headline') < page.index("<h2>Gates</h2>")


def test_headline_without_a_champion_or_with_an_unloadable_one():
    alone = Evidence(candidate=model("1"), champion=None, units=UNITS, data_hash=None)
    line = C.headline(alone, gates_of(alone))
    assert line.startswith("v1 has no champion to compare with") and "can be approved" in line
    lost = Evidence(candidate=model("2"), champion=None, units=UNITS, data_hash=None,
                    notes=["champion v1 could not be loaded"])
    assert "was NOT compared with the champion" in C.headline(lost, gates_of(lost))


def test_an_equal_candidate_reads_as_about_as_good_and_passes():
    ev = Evidence(candidate=model("2"), champion=model("1"), units=UNITS, data_hash=None)
    line = C.headline(ev, gates_of(ev))
    assert "v2 is about as good as v1" in line and "same training configuration" in line
    assert "all gates pass" in line


def test_a_slightly_worse_candidate_the_gates_pass_says_within_tolerance():
    ev = Evidence(candidate=model("2", extra=lambda unit, true: 2.0 if true < 125 else 0.0,
                                  params={"n_members": "8"}),
                  champion=model("1"), units=UNITS, data_hash=None)
    line = C.headline(ev, gates_of(ev))
    assert line.startswith("v2 is 2% worse than v1") and "n_members 8 (v1: 4)" in line
    assert line.endswith("all gates pass (within tolerance): v2 can be approved by a reviewer.")


def test_the_change_is_located_in_the_band_that_makes_it():
    def near_failure(unit, true):
        return 25.0 if true < 25 else 0.0

    ev = Evidence(candidate=model("2", extra=near_failure), champion=model("1"), units=UNITS,
                  data_hash=None)
    assert C.where_it_changes(ev) == "0–25"


def test_training_configuration_side_by_side_with_differences_first(worse, page):
    rows = C.config_rows(worse[0])
    assert [r[0] for r in rows[:2]] == ["max_epochs", "learning_rate"]
    assert all(r[3] for r in rows[:2]) and not any(r[3] for r in rows[2:])
    assert '<tr class="diff"><td>max_epochs</td><td>1</td><td>40</td></tr>' in page
    assert "<td>feature_set</td><td>all</td><td>all</td>" in page  # the same: not highlighted


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [({}, "same data as the champion (DVC abc123def456), the same 6 run-to-failure units"),
     ({"dvc": "999999999999", "units": [*UNITS, "u7"]},
      "different data: DVC 999999999999 (champion abc123def456); 1 units added (u7), 0 removed"),
     ({"dvc": "unknown"}, "DVC data hash not recorded for one of them")],
)
def test_data_change_since_the_champion(candidate, expected):
    ev = Evidence(candidate=model("2", **candidate), champion=model("1"), units=UNITS,
                  data_hash=None)
    assert C.data_change(ev).startswith(expected)


def test_both_lineages_side_by_side(page):
    assert "Data change since the champion:</b> same data as the champion" in page
    assert "<td>MLflow run</td><td>run3</td><td>run1</td>" in page
    assert "<td>trainer (the run&#x27;s server-recorded user)</td><td>alice</td>" in page


def test_per_asset_table_is_the_gates_scoring_broken_down_worst_first(worse, page):
    ev, _ = worse
    table = C.asset_table(ev)
    assert table.index[0] == "u4"  # the unit with the extra error
    assert list(table["rmse"]) == sorted(table["rmse"], reverse=True)
    # every unit weighs alike: the units' mean squared cut error is the gates' cut_rmse²
    assert np.sqrt((table["rmse"] ** 2).mean()) == pytest.approx(ev.candidate.metrics["cut_rmse"])
    assert (table["phm08"].mean() == pytest.approx(ev.candidate.metrics["cut_phm08_per_unit"]))
    assert table.loc["u4", "bias"] > table.loc["u1", "bias"] > 0  # late
    assert page.index("<td>u4</td>") < page.index("<td>u1</td>")
    assert "The 4 worst assets by the candidate&#x27;s RMSE at the cut points" in page


def test_figures_and_tables_are_labelled_and_counts_are_integers(page):
    assert page.count('src="data:image/png;base64,') == 4
    assert page.count("<figcaption>") == 4
    assert "8095.000" not in page and re.search(r"<td>1200</td>", page)  # n_rows: 6 lives
    assert "interval coverage [cut_coverage]" in page
    assert "interval coverage over all rows (uncapped truth) [coverage]" in page
    assert "Interval calibration over ALL evaluation rows" in page
    assert "density" in page and "Residual (predicted - true, uncapped) at the cut points" in page
    assert page.count("lower is better") >= 5
    # the headline figures are the gates' and the all-rows ones are labelled as not
    assert page.index("RMSE (RUL units) [cut_rmse]") < page.index("[phm08_score]")
    assert "All evaluation rows (not what the gates read)" in page


def test_a_health_maximum_below_0_9_is_flagged(worse, page):
    assert worse[1].passed is False and "health in [0, 1]" not in worse[1].failures
    assert "max_health 0.821 is below 0.9: it never calls a unit healthy" in page
    assert '<td class="warn">0.821 ⚠</td>' in page


def test_version_description_is_short_markdown_with_headline_gates_figures_and_link(worse):
    ev, gates = worse
    text = version_description(ev, gates, "runs:/run3/review/review-v3.html")
    assert text.startswith(f"**{C.headline(ev, gates)}**")
    assert "Gates: **FAIL** — rmse vs champion:" in text
    cand, champ = ev.candidate.metrics["cut_rmse"], ev.champion.metrics["cut_rmse"]
    assert f"| RMSE at the cut points (lower is better) | {cand:.3f} | {champ:.3f} |" in text
    assert "| | candidate v3 | champion v1 |" in text
    assert text.rstrip().endswith("Review report: runs:/run3/review/review-v3.html")
    assert len(text) < 2000


def test_without_cut_figures_on_the_champion_the_all_rows_pair_is_named_as_such():
    old = model("1")
    old.metrics = {k: v for k, v in old.metrics.items() if not k.startswith("cut_")}
    ev = Evidence(candidate=model("2"), champion=old, units=UNITS, data_hash=None)
    assert C.scoring_keys(ev) == ("rmse", "phm08_score", False)
    assert "in RMSE over all rows" in C.headline(ev, gates_of(ev))
    assert "RMSE over all rows (lower is better)" in version_description(ev, gates_of(ev), "x")
