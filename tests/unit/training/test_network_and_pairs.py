"""The deep-ensemble network, long-gap time-consistency pairs and unlabelled (in-service) rows."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightning")

from training import physics  # noqa: E402
from training.datamodule import RULDataModule, Standardizer, build_pairs  # noqa: E402
from training.network import RULNet  # noqa: E402


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


def test_unlabelled_assets_train_the_physics_only_and_never_validate():
    df = _frame(lives=(30, 40, 50, 35, 45), unlabelled=(4,))
    dm = RULDataModule(df, ["f", "cycle"], val_fraction=0.25, seed=0, pair_max_gap=5)
    assert dm.unlabelled_assets == ["a4"]
    assert "a4" not in dm.val_assets and "a4" not in dm.train_assets
    assert dm.n_unlabelled_rows == 45
    tp = dm.train_pairs
    assert tp.labelled.sum() == len(dm.train_frame) and (tp.labelled == 0).sum() == 45
    assert np.isfinite(tp.rul_raw).all()  # NaN never reaches a loss
    assert dm.val_pairs.labelled.all()


def test_loss_ignores_labels_of_unlabelled_rows_but_not_their_physics():
    from training.module import RULModule

    torch.manual_seed(0)
    m = RULModule(n_features=2, hidden_size=8, n_members=2)
    n = 6
    x, x_next = torch.randn(n, 2), torch.randn(n, 2)
    y = torch.full((n,), 50.0)
    dt, rul_raw, has_next = torch.ones(n), torch.full((n,), 50.0), torch.ones(n)
    labelled = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    base = m.losses((x, x_next, y, y, dt, rul_raw, has_next, labelled))
    y2 = y.clone()
    y2[3:] = 0.0  # garbage where there is no label
    again = m.losses((x, x_next, y2, y2, dt, rul_raw, has_next, labelled))
    assert again["data"].item() == pytest.approx(base["data"].item())
    # without the unlabelled rows' pairs the time-consistency term changes: they count
    only = m.losses((x, x_next, y, y, dt, rul_raw, has_next * labelled, labelled))
    assert only["tc"].item() != pytest.approx(base["tc"].item())
