"""The deep-ensemble network, cross-fitting folds, trajectory pairs and unlabelled rows."""

import numpy as np
import pandas as pd
import pytest
import torch

from training import physics
from training.datamodule import (
    NO_FOLD,
    RULDataModule,
    Standardizer,
    assign_folds,
    build_pairs,
)
from training.network import RULNet, member_folds


def test_ensemble_members_are_independent_and_forward_is_their_mean():
    torch.manual_seed(0)
    net = RULNet(5, hidden=8, n_members=3)
    x = torch.randn(7, 5)
    rul, health = net.members(x)
    assert rul.shape == health.shape == (3, 7)
    assert (rul >= 0).all() and ((health >= 0) & (health <= 1)).all()
    assert not torch.allclose(rul[0], rul[1])  # different initialisations
    mean_rul, mean_health = net(x)
    assert torch.allclose(mean_rul, rul.mean(0)) and torch.allclose(mean_health, health.mean(0))
    # member k only depends on member k's weights
    with torch.no_grad():
        net.heads.weight[1].zero_()
        net.heads.bias[1].zero_()
    rul2, _ = net.members(x)
    assert torch.allclose(rul2[0], rul[0]) and torch.allclose(rul2[2], rul[2])
    assert torch.allclose(rul2[1], torch.full((7,), 125.0 * np.log(2.0)))


def test_masked_mean_square_broadcasts_one_mask_over_members():
    r = torch.tensor([[1.0, 3.0], [1.0, 5.0]])
    m = torch.tensor([True, False])
    assert physics.masked_mean_square(r, m).item() == pytest.approx(1.0)


def _frame(lives=(30, 40), unlabelled=()):
    parts = []
    for i, life in enumerate(lives):
        c = np.arange(1, life + 1)
        rul = (life - c).astype(float) if i not in unlabelled else np.full(life, np.nan)
        parts.append(pd.DataFrame({"asset_id": f"a{i}", "cycle": c, "f": c * 0.1, "rul": rul}))
    return pd.concat(parts, ignore_index=True)


def test_long_gap_pairs_stay_inside_the_asset_and_satisfy_the_clock():
    df = _frame()
    sc = Standardizer.fit(df[["f"]].to_numpy())
    p = build_pairs(df, ["f"], sc, cap=125.0, max_gap=10, seed=1)
    has = p.has_next > 0
    assert 1 <= p.dt[has].min() and p.dt[has].max() <= 10 and p.dt[has].std() > 1
    # partner of the same asset, later, and the true RUL falls by exactly dt
    np.testing.assert_allclose(p.y[has] - p.y_next[has], p.dt[has])
    last = np.r_[p.asset_id[1:] != p.asset_id[:-1], True]
    assert not has[last].any() and has[~last].all()
    consecutive = build_pairs(df, ["f"], sc, cap=125.0)
    assert set(consecutive.dt[consecutive.has_next > 0]) == {1.0}


def test_folds_cover_every_labelled_asset_once_and_are_balanced():
    folds = assign_folds([f"a{i}" for i in range(11)] * 2, n_folds=5, seed=3)
    assert sorted(folds) == sorted(f"a{i}" for i in range(11))
    sizes = np.bincount(list(folds.values()))
    assert len(sizes) == 5 and sizes.max() - sizes.min() <= 1
    assert assign_folds(["b", "a"], n_folds=5, seed=0).keys() == {"a", "b"}  # F <= assets
    assert set(assign_folds(["b", "a"], n_folds=5, seed=0).values()) == {0, 1}
    with pytest.raises(ValueError, match="at least 2"):
        assign_folds(["a"], n_folds=5, seed=0)
    assert member_folds(5, 2).tolist() == [0, 1, 0, 1, 0]


def test_unlabelled_assets_train_the_physics_only_and_never_validate():
    df = _frame(lives=(30, 40, 50, 35, 45), unlabelled=(4,))
    dm = RULDataModule(df, ["f", "cycle"], n_folds=2, seed=0, pair_max_gap=5)
    assert dm.unlabelled_assets == ["a4"]
    assert "a4" not in dm.folds and dm.labelled_assets == ["a0", "a1", "a2", "a3"]
    assert dm.n_unlabelled_rows == 45
    tp = dm.train_pairs
    assert tp.labelled.sum() == len(dm.labelled_frame) and (tp.labelled == 0).sum() == 45
    assert (tp.fold[tp.labelled == 0] == NO_FOLD).all() and set(tp.fold[tp.labelled > 0]) == {0, 1}
    assert np.isfinite(tp.rul_raw).all()  # NaN never reaches a loss
    # censoring: the in-service asset ran 44 more cycles after its first reading, 0 after
    # its last; for a run-to-failure asset "cycles still running" is its true RUL
    unl = tp.labelled == 0
    assert tp.survived[unl].max() == 44 and tp.survived[unl].min() == 0
    np.testing.assert_array_equal(tp.survived[~unl], tp.rul_raw[~unl])
    assert dm.val_pairs.labelled.all() and (dm.val_pairs.fold >= 0).all()


def test_virtual_assets_are_held_out_with_source_and_donor_and_never_validate():
    df = _frame(lives=(30, 40, 50, 35))
    # virtual copies (training.augment) of every asset, as rows: at the pace of the next
    # asset (its donor) and of the one after
    ids = sorted(df["asset_id"].unique())
    parents, copies = {}, []
    for i, (a, g) in enumerate(df.groupby("asset_id")):
        for step, k in ((1, 0.8), (2, 1.25)):
            vid = f"{a}*{k}"
            parents[vid] = (a, ids[(i + step) % len(ids)])
            copies.append(g.assign(asset_id=vid, f=g["f"] * k + 5.0, rul=g["rul"] / k))
    virtual = pd.concat(copies, ignore_index=True)
    dm = RULDataModule(
        pd.concat([df, virtual], ignore_index=True),
        ["f", "cycle"],
        n_folds=2,
        seed=0,
        virtual_parents=parents,
    )
    assert dm.labelled_assets == ["a0", "a1", "a2", "a3"]  # real assets only
    assert dm.n_virtual_rows == len(virtual) and dm.n_unlabelled_rows == 0
    assert set(dm.val_pairs.asset_id) == set(dm.labelled_assets)
    tp = dm.train_pairs
    for vid, (src, donor) in parents.items():
        assert (tp.fold[tp.asset_id == vid] == dm.folds[src]).all()
        assert (tp.donor_fold[tp.asset_id == vid] == dm.folds[donor]).all()
    assert (tp.donor_fold[np.isin(tp.asset_id, ids)] == NO_FOLD).all()
    # the scaler is the one of the real rows: the augmentation does not move the inputs
    np.testing.assert_allclose(dm.scaler.mean, df[["f", "cycle"]].mean().to_numpy())


def _batch(n=6, fold=None, labelled=None, donor_fold=None):
    x, x_next = torch.randn(n, 2), torch.randn(n, 2)
    y = torch.full((n,), 50.0)
    dt, rul_raw, has_next = torch.ones(n), torch.full((n,), 50.0), torch.ones(n)
    labelled = torch.ones(n) if labelled is None else labelled
    fold = torch.full((n,), NO_FOLD) if fold is None else fold
    donor = torch.full((n,), NO_FOLD) if donor_fold is None else donor_fold
    return [x, x_next, y, y.clone(), dt, rul_raw, has_next, labelled, fold, donor, torch.zeros(n)]


def test_loss_ignores_labels_of_unlabelled_rows_but_not_their_physics():
    from training.module import RULModule

    torch.manual_seed(0)
    m = RULModule(n_features=2, hidden_size=8, n_members=2)
    b = _batch(labelled=torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    base = m.losses(b)
    garbage = list(b)
    garbage[2] = b[2].clone()
    garbage[2][3:] = 0.0  # garbage where there is no label
    assert m.losses(garbage)["data"].item() == pytest.approx(base["data"].item())
    # without the unlabelled rows' pairs the time-consistency term changes: they count
    only = list(b)
    only[6] = b[6] * b[7]
    assert m.losses(only)["tc"].item() != pytest.approx(base["tc"].item())


@pytest.mark.parametrize("by", ["fold", "donor_fold"])
def test_a_member_never_learns_from_its_held_out_fold(by):
    """Gradients of member k's weights do not depend on the rows of fold k mod F, whether
    the row belongs to that fold or (virtual rows) its donor does."""
    from training.module import RULModule

    torch.manual_seed(0)
    if by == "fold":
        m = RULModule(n_features=2, hidden_size=8, n_members=2, n_folds=2)
        b = _batch(fold=torch.tensor([0, 0, 0, 1, 1, 1]))
    else:  # rows 0-2: a copy of a fold-2 asset at the pace of a fold-0 asset (its donor)
        m = RULModule(n_features=2, hidden_size=8, n_members=3, n_folds=3)
        b = _batch(
            fold=torch.tensor([2, 2, 2, 1, 1, 1]),
            donor_fold=torch.tensor([0, 0, 0, NO_FOLD, NO_FOLD, NO_FOLD]),
        )

    def member_grads(batch):
        m.zero_grad()
        t = m.losses(batch)
        (t["data"] + t["tc"] + t["dl"]).backward()
        return m.net.heads.weight.grad.clone()  # (K, hidden, 2)

    g = member_grads(b)
    changed = list(b)
    changed[0] = b[0].clone()
    changed[0][:3] += 5.0  # fold-0 inputs and labels change...
    changed[2] = b[2].clone()
    changed[2][:3] = 0.0
    g2 = member_grads(changed)
    # ...member 0 (holds out fold 0) sees no difference, member 1 does; terms are mean-
    # normalised over all members' rows, so compare directions, not magnitudes
    cos = torch.nn.functional.cosine_similarity(g[0].flatten(), g2[0].flatten(), dim=0)
    assert cos.item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.allclose(g[1], g2[1])
    if by == "donor_fold":
        return  # validation rows are real: no donor
    # validation reports each row from the members that held it out
    rul, _ = m.net.members(b[0])
    t = m.losses(b)
    torch.testing.assert_close(t["rul"][:3], rul[0, :3])
    torch.testing.assert_close(t["rul"][3:], rul[1, 3:])


def test_the_epoch_is_kept_on_all_rows_and_the_candidate_scored_by_its_cut_figure(monkeypatch):
    """The kept weights follow the all-rows RMSE; `best_rmse` (what candidates are compared
    on) is the cut RMSE of that same epoch, not the lowest cut RMSE of the run."""
    from types import SimpleNamespace

    from training.module import RULModule

    m = RULModule(n_features=2, hidden_size=8, n_members=2)
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=0)
    m._trainer = trainer
    monkeypatch.setattr(m, "log", lambda *a, **k: None)
    # (cut RMSE, all-rows RMSE) per epoch: epoch 1 has the best cut figure, epoch 2 the
    # best all-rows one
    for epoch, (cut, all_rows) in enumerate([(10.0, 5.0), (8.0, 6.0), (12.0, 4.0), (9.0, 4.5)]):
        trainer.current_epoch = epoch
        m._val_sums = torch.tensor([cut**2, 1.0, 0.0, 0.0, all_rows**2, 1.0], dtype=torch.float64)
        with torch.no_grad():
            next(m.net.parameters()).fill_(float(epoch))  # marks the weights of this epoch
        m.on_validation_epoch_end()
    assert m.best_epoch == 2
    first = next(iter(k for k in m.best_state if k.startswith("net.")))
    assert float(m.best_state[first].flatten()[0]) == 2.0
    assert m.best_rmse == pytest.approx(12.0)
    assert m.best_rmse_all_rows == pytest.approx(4.0)
