"""Blended feature sets: the members of two candidates merged into one ensemble, exactly."""

import numpy as np
import pytest
import torch

from features.settings import get_settings
from tests.layout import FEATURE_COLUMNS, typed
from training.blend import BLEND, blends, cut_rmse
from training.candidates import feature_candidates, train_one
from training.network import out_of_fold_mean


@pytest.fixture(scope="module")
def two_sets():
    """Two short real trainings of one simulated fleet: every feature, and without the
    `*_vs_start` group."""
    from features.labels import rul_labels
    from features.sources.simulator import simulate_fleet
    from features.transforms import window_features

    readings, events = simulate_fleet(10, seed=3)
    frame = window_features(readings, typed(30)).merge(
        rul_labels(readings, events)[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"]
    )
    ts = get_settings(profile="tiny").training_settings().model_copy(
        update={"max_epochs": 3, "n_members": 4, "n_folds": 2, "time_scale_copies": 0})
    candidates = {f"pinn/{name}": (cols, ts)
                  for name, cols in feature_candidates(FEATURE_COLUMNS).items()}
    fits = {name: train_one(frame, cols, t, "cpu", label=name, progress=False)
            for name, (cols, t) in candidates.items()}
    return frame, candidates, fits


def _oof(dm, module):
    net, vp = module.net.eval(), dm.val_pairs
    with torch.inference_mode():
        members = net.members(torch.from_numpy(vp.x))[0]
    return out_of_fold_mean(members, module.member_fold, torch.from_numpy(vp.fold)).numpy()


def test_the_blend_is_the_mean_of_its_sets_out_of_fold(two_sets):
    frame, candidates, fits = two_sets
    for dm, module, _ in fits.values():  # the figure candidates are compared on, recomputed
        assert cut_rmse(dm, module) == pytest.approx(module.best_rmse, rel=1e-4)
    new_fits, new_candidates, sets = blends(fits, candidates)
    name = f"pinn/{BLEND}"
    assert list(new_fits) == [name] and sets[name] == ["all", "without_vs_start"]
    dm, merged, _ = new_fits[name]
    cols, ts = new_candidates[name]
    assert cols == FEATURE_COLUMNS and ts.n_members == merged.net.n_members == 8
    # each member keeps its held-out fold: the merged out-of-fold prediction is the mean
    # of the two sets' out-of-fold predictions, row by row
    parts = [_oof(*fits[n][:2]) for n in candidates]
    np.testing.assert_allclose(_oof(dm, merged), np.mean(parts, axis=0), rtol=1e-5, atol=1e-4)
    # the dropped columns carry no weight: changing them changes nothing
    x = torch.from_numpy(dm.val_pairs.x.copy())
    dropped = [FEATURE_COLUMNS.index(c) for c in FEATURE_COLUMNS
               if c not in candidates["pinn/without_vs_start"][0]]
    member_rul = merged.net.members(x)[0]
    x[:, dropped] += 5.0
    changed = merged.net.members(x)[0]
    torch.testing.assert_close(changed[4:], member_rul[4:])
    assert not torch.allclose(changed[:4], member_rul[:4])
    assert merged.best_rmse == pytest.approx(cut_rmse(dm, merged))


def test_no_blend_of_a_single_set_or_of_members_that_straddle_folds(two_sets):
    frame, candidates, fits = two_sets
    one = {"pinn/all": fits["pinn/all"]}
    assert blends(one, candidates)[0] == {}
    # two variants with one feature set each: nothing to blend (never across variants)
    mixed = {"pinn/all": fits["pinn/all"], "baseline/all": fits["pinn/without_vs_start"]}
    assert blends(mixed, {**candidates, "baseline/all": candidates["pinn/all"]})[0] == {}
    odd = dict(fits)
    dm, module, epochs = odd["pinn/all"]
    module.hparams.n_members = 3  # 3 members over 2 folds: member 3 would hold out fold 1
    try:
        assert blends(odd, candidates)[0] == {}
    finally:
        module.hparams.n_members = 4
