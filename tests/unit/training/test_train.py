"""A short real training run on a synthetic degradation fleet beats a constant predictor."""

import numpy as np
import pytest

from features.settings import get_settings
from pipelines.gates import floor_gate
from tests.layout import FEATURE_COLUMNS, START_COLUMNS, typed
from training.artifact import load_predictor
from training.candidates import feature_candidates
from training.evaluate import evaluate
from training.synthetic import synthetic_frame
from training.train import fit


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    frame = synthetic_frame(n_assets=20, n_sensors=4, seed=3, t_min=120, t_max=200)
    frame.loc[frame.index[:3], "s0"] = np.nan  # dropped, not imputed
    s = get_settings(state_dir=tmp, profile="tiny")  # the tests' budget: 2 members, 2 folds
    s.training.max_epochs = 12
    # no raw readings behind these features: no virtual assets (they are tested below on
    # the simulator, whose readings go through the window transform)
    s.training.time_scale_copies = 0
    return frame, s, fit(frame, s, out_dir=tmp / "model")


def test_fit_beats_constant_and_passes_gate(fitted):
    frame, s, r = fitted
    m = r.metrics
    assert m["val_rmse"] < 0.6 * m["val_constant_rmse"]
    floor = floor_gate(m, s.training.gate_max_rmse_ratio_to_constant)
    assert floor.passed, floor.detail
    assert m["n_dropped_rows"] == 3
    assert 0 < r.physics_params["alpha"] < 1
    assert r.feature_columns[0] == "cycle" and "rul" not in r.feature_columns
    # cross-fitting: every asset is predicted out of fold
    assert sorted(r.val_assets) == sorted(frame["asset_id"].unique())


def test_fit_artifact_is_what_was_evaluated(fitted):
    frame, s, r = fitted
    val = frame.dropna()
    predictor = load_predictor(r.artifact_dir)
    again = evaluate(predictor, val, horizon=30, out_of_fold=True)
    assert again["rmse"] == pytest.approx(r.metrics["val_rmse"], rel=1e-6)
    # in sample (every member, as served) the training assets look better than out of fold
    assert evaluate(predictor, val, horizon=30)["rmse"] < again["rmse"]
    assert set(predictor.spec.asset_folds) == set(frame["asset_id"])


def test_fit_is_deterministic_and_baseline_runs(fitted, tmp_path):
    frame, s, r = fitted
    r2 = fit(frame, s, out_dir=tmp_path / "again")
    assert r2.metrics["val_rmse"] == pytest.approx(r.metrics["val_rmse"], rel=1e-6)
    base_settings = s.model_copy(update={"training": s.training.data_only()})
    base = fit(frame, base_settings, out_dir=tmp_path / "baseline")
    assert base.metrics["val_rmse"] < base.metrics["val_constant_rmse"]
    # the baseline has no physics: no loss terms and no virtual assets of the damage law
    assert base.params["weight_time_consistency"] == base.params["weight_damage_law"] == 0
    assert base.metrics["n_virtual_rows"] == 0
    assert r.metrics["n_train_rows"] == len(frame) - 3


def test_short_run_on_the_simulated_fleet_beats_a_constant_predictor(tmp_path):
    """The demo's own data path: simulator -> window features -> labels -> fit."""
    from features.labels import rul_labels
    from features.sources.simulator import simulate_fleet
    from features.transforms import window_features

    readings, events = simulate_fleet(12, seed=5)
    frame = window_features(readings, typed(30)).merge(
        rul_labels(readings, events)[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"]
    )
    s = get_settings(state_dir=tmp_path, profile="tiny")
    # both feature-set candidates, and 2 virtual copies of every unit (physics on: the
    # choice between physics and none is test_auto_physics_ships_the_cut_validation_winner)
    s.training.select_features, s.training.physics = True, "on"
    s.training.time_scale_copies, s.training.max_virtual_assets = 2, 100
    with pytest.raises(ValueError, match="readings"):  # virtual assets need the raw readings
        fit(frame, s, feature_columns=FEATURE_COLUMNS, out_dir=tmp_path / "no-readings")
    s.training.workers = 2  # the two candidate feature sets train in two worker processes
    r = fit(
        frame, s, feature_columns=FEATURE_COLUMNS, readings=readings, out_dir=tmp_path / "model"
    )
    # out of fold: every simulated unit is scored by members that never trained on it
    assert r.metrics["val_rmse"] < 0.6 * r.metrics["val_constant_rmse"], r.metrics
    # it trained on 2 virtual copies per unit, built from their readings; scored on real ones
    assert r.metrics["n_virtual_rows"] > r.metrics["n_train_rows"] == len(frame)
    # both feature sets were trained; the one kept has the lower out-of-fold RMSE
    rmse = {k: r.metrics[f"select_val_rmse_pinn_{k}"] for k in ("all", "without_vs_start")}
    assert r.params["feature_set"] == min(rmse, key=rmse.get)
    kept = feature_candidates(FEATURE_COLUMNS)[r.params["feature_set"]]
    assert r.predictor.feature_columns == kept
    # one after the other in this process: the same runs, to the bit (seeded, one thread)
    s.training.workers = 1
    r1 = fit(
        frame, s, feature_columns=FEATURE_COLUMNS, readings=readings, out_dir=tmp_path / "seq"
    )
    for k in ("select_val_rmse_pinn_all", "select_val_rmse_pinn_without_vs_start",
              "best_epoch", "epochs"):
        assert r1.metrics[k] == r.metrics[k], k
    assert r1.params["feature_set"] == r.params["feature_set"]
    pred, pred1 = (x.predictor.predict(frame, horizon=30)["rul"].to_numpy() for x in (r, r1))
    np.testing.assert_array_equal(pred1, pred)


def test_candidate_workers_one_per_core_and_candidate_on_large_frames(monkeypatch):
    from training.candidates import AUTO_WORKERS_MIN_ROWS, candidate_workers

    ts = get_settings().training
    big, small = AUTO_WORKERS_MIN_ROWS, AUTO_WORKERS_MIN_ROWS - 1
    monkeypatch.setattr("os.sched_getaffinity", lambda _pid: {0, 1, 2, 3}, raising=False)
    assert candidate_workers(ts, 2, "cpu", big) == 2  # at most one per candidate
    assert candidate_workers(ts, 6, "cpu", big) == 4  # at most one per core
    assert candidate_workers(ts, 1, "cpu", big) == 1
    assert candidate_workers(ts, 2, "cpu", small) == 1  # a worker's start would not pay
    assert candidate_workers(ts, 2, "cuda", big) == 1  # one device: one run at a time
    assert candidate_workers(ts.model_copy(update={"workers": 1}), 2, "cpu", big) == 1
    assert candidate_workers(ts.model_copy(update={"workers": 3}), 6, "cpu", small) == 3


def test_feature_candidates_drop_each_optional_group():

    got = feature_candidates(FEATURE_COLUMNS)
    assert list(got) == ["all", "without_vs_start"]
    assert got["all"] == FEATURE_COLUMNS
    assert got["without_vs_start"] == [c for c in FEATURE_COLUMNS if c not in START_COLUMNS]
    assert len(got["without_vs_start"]) == len(FEATURE_COLUMNS) - len(START_COLUMNS)
    # a frame without the group has nothing to compare
    assert list(feature_candidates(got["without_vs_start"])) == ["all"]


def test_auto_physics_ships_the_cut_validation_winner(fitted):
    """physics "auto" trains the physics-informed model and the data-only baseline and
    ships the one with the lower cut validation RMSE, reported beside the all-rows one."""
    frame, s, r = fitted
    assert s.training.physics == "auto"
    scores = {k.removeprefix("select_val_rmse_"): v for k, v in r.metrics.items()
              if k.startswith("select_val_rmse_")}
    assert {k.split("_", 1)[0] for k in scores} == {"pinn", "baseline"}
    assert f"{r.params['physics_variant']}_{r.params['feature_set']}" == min(scores,
                                                                             key=scores.get)
    assert r.metrics["val_cut_rmse"] == pytest.approx(min(scores.values()), rel=1e-4)
    assert r.metrics["val_cut_n_units"] == pytest.approx(frame["asset_id"].nunique())
    assert r.metrics["val_cut_rmse"] < r.metrics["val_cut_constant_rmse"]
    assert 0 <= r.metrics["val_cut_units_missed"] <= 1
    if r.params["physics_variant"] == "baseline":
        assert r.params["weight_time_consistency"] == 0


def test_on_a_two_mode_fleet_the_shipped_model_is_never_worse_than_the_baseline(tmp_path):
    """Two fault modes (HPC and fan, different lifetimes, like C-MAPSS FD003): what `fit`
    ships with physics "auto" scores no worse on its own held-out units, at random cuts of
    their lives, than the data-only baseline trained alone on the same folds."""
    from features.labels import rul_labels
    from features.sources.simulator import simulate_fleet
    from features.transforms import window_features

    readings, events = simulate_fleet(12, seed=11, fault_modes=2)
    frame = window_features(readings, typed(30)).merge(
        rul_labels(readings, events)[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"]
    )
    s = get_settings(state_dir=tmp_path, profile="tiny")
    s.training.time_scale_copies, s.training.max_virtual_assets = 2, 100
    shipped = fit(frame, s, feature_columns=FEATURE_COLUMNS, readings=readings,
                  out_dir=tmp_path / "auto")
    s.training.physics = "off"
    baseline = fit(frame, s, feature_columns=FEATURE_COLUMNS, readings=readings,
                   out_dir=tmp_path / "off")
    assert baseline.params["physics_variant"] == "baseline"
    assert shipped.metrics["val_cut_rmse"] <= baseline.metrics["val_cut_rmse"] + 1e-6
    assert shipped.val_assets == baseline.val_assets
