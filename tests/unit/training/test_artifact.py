"""Artifact roundtrip: safetensors + JSON rebuild the same predictor; the hash sees every byte."""

import numpy as np
import pandas as pd
import pytest
import torch

from training.artifact import ModelSpec, load_predictor, save_artifact, sha256_of_dir
from training.conformal import ConformalCalibration
from training.network import RULNet

COLS = ["a", "b", "cycle"]


def _artifact(path):
    torch.manual_seed(0)
    net = RULNet(len(COLS), 8)
    rng = np.random.default_rng(0)
    pred = rng.uniform(0, 125, 400)
    cal = ConformalCalibration.fit(pred, pred + rng.normal(0, 5, 400))
    spec = ModelSpec(
        n_features=3,
        hidden_size=8,
        feature_columns=COLS,
        scaler_mean=[0.0, 1.0, 100.0],
        scaler_std=[1.0, 2.0, 50.0],
        rul_cap=125.0,
        interval_level=0.9,
        calibration=cal.to_dict(),
        physics={"damage_law": "exponential", "alpha": 0.02},
    )
    return net, spec, save_artifact(path, net, spec)


def _frame(n=5):
    rng = np.random.default_rng(1)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "cycle": np.arange(n)})


def test_roundtrip_same_predictions(tmp_path):
    net, spec, d = _artifact(tmp_path / "m")
    assert sorted(p.name for p in d.iterdir()) == ["model.json", "weights.safetensors"]
    pred = load_predictor(d)
    df = _frame()
    out = pred.predict(df, horizon=30)
    assert list(out.columns) == [
        "rul",
        "rul_lower",
        "rul_upper",
        "interval_level",
        "p_fail",
        "health",
    ]
    with torch.no_grad():
        z = (df[COLS].to_numpy() - np.array(spec.scaler_mean)) / np.array(spec.scaler_std)
        rul, health = net(torch.tensor(z, dtype=torch.float32))
    np.testing.assert_allclose(out["rul"], rul.numpy(), rtol=1e-5)
    np.testing.assert_allclose(out["health"], health.numpy(), rtol=1e-5)
    assert (out["rul_lower"] <= out["rul"]).all() and (out["rul"] <= out["rul_upper"]).all()
    assert out["p_fail"].between(0, 1).all() and (out["interval_level"] == 0.9).all()
    # a second load is identical; level override narrows the interval
    again = load_predictor(d).predict(df, horizon=30)
    pd.testing.assert_frame_equal(out, again)
    narrow = pred.predict(df, horizon=30, level=0.5)
    assert (
        (narrow["rul_upper"] - narrow["rul_lower"]) <= (out["rul_upper"] - out["rul_lower"])
    ).all()
    fast = pred.predict_array(df[COLS].to_numpy()[0], horizon=30)
    assert fast["rul"][0] == pytest.approx(out["rul"].iloc[0])


def test_sha256_changes_with_one_byte(tmp_path):
    _, _, d = _artifact(tmp_path / "m")
    h = sha256_of_dir(d)
    assert h == sha256_of_dir(d)
    w = d / "weights.safetensors"
    data = bytearray(w.read_bytes())
    data[-1] ^= 0x01
    w.write_bytes(bytes(data))
    assert sha256_of_dir(d) != h


def test_inf_and_missing_columns_raise_clear_errors_and_nan_is_imputed(tmp_path):
    _, _, d = _artifact(tmp_path / "m")
    pred = load_predictor(d)
    df = _frame()
    df.loc[2, "b"] = np.inf
    with pytest.raises(ValueError, match=r"\['b'\]"):
        pred.predict(df, horizon=30)
    # NaN is a missing optional sensor's feature: the training mean stands in for it
    df.loc[2, "b"] = np.nan
    imputed = df.copy()
    imputed.loc[2, "b"] = pred.spec.scaler_mean[pred.feature_columns.index("b")]
    pd.testing.assert_frame_equal(pred.predict(df, horizon=30), pred.predict(imputed, horizon=30),
                                  atol=1e-5)
    with pytest.raises(ValueError, match="missing feature columns"):
        pred.predict(df.drop(columns=["a"]), horizon=30)


def test_save_refuses_non_empty_dir(tmp_path):
    _artifact(tmp_path / "m")
    net, spec, _ = _artifact(tmp_path / "other")
    with pytest.raises(FileExistsError):
        save_artifact(tmp_path / "m", net, spec)


def test_out_of_fold_predictions_use_only_the_members_that_held_the_asset_out(tmp_path):
    torch.manual_seed(0)
    net = RULNet(len(COLS), 8, n_members=4)  # members 0,2 hold out fold 0; 1,3 fold 1
    cal = ConformalCalibration.fit(np.linspace(0, 125, 400), np.linspace(0, 125, 400))
    spec = ModelSpec(
        n_features=3, hidden_size=8, feature_columns=COLS, scaler_mean=[0.0, 0.0, 0.0],
        scaler_std=[1.0, 1.0, 1.0], rul_cap=125.0, interval_level=0.9,
        calibration=cal.to_dict(), n_members=4, n_folds=2, asset_folds={"u0": 0, "u1": 1},
    )
    pred = load_predictor(save_artifact(tmp_path / "m", net, spec))
    df = _frame(3).assign(asset_id=["u0", "u1", "new"])
    z = torch.tensor(df[COLS].to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        members = net.members(z)[0].numpy()
    oof = pred.predict(df, horizon=30, out_of_fold=True)["rul"].to_numpy()
    np.testing.assert_allclose(oof, [members[[0, 2], 0].mean(), members[[1, 3], 1].mean(),
                                     members[:, 2].mean()], rtol=1e-5)
    served = pred.predict(df, horizon=30)["rul"].to_numpy()  # serving: every member
    np.testing.assert_allclose(served, members.mean(0), rtol=1e-5)
