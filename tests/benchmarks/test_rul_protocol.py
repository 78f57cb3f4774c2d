"""Pure parts of benchmarks/rul.py: unit sampling, the summary layout, the table."""

import numpy as np
import pandas as pd
import pytest

from benchmarks.rul import MODELS, sample_units, score_constant, summarise, table


def _frame(n_units=10, life=50):
    parts = [
        pd.DataFrame({"asset_id": f"u{i}", "cycle": np.arange(1, life + 1),
                      "rul": np.arange(life - 1, -1, -1, dtype=float), "f": 1.0})
        for i in range(n_units)
    ]
    return pd.concat(parts, ignore_index=True)


def test_sample_units_fraction_and_unlabelled_in_service_units():
    df = _frame()
    assert sample_units(df, 1.0, 0) is df
    part = sample_units(df, 0.5, seed=3)
    assert part["asset_id"].nunique() == 5 and part["rul"].notna().all()
    assert sample_units(df, 0.5, seed=3)["asset_id"].tolist() == part["asset_id"].tolist()
    assert sample_units(df, 0.1, seed=3)["asset_id"].nunique() == 4  # floor for validation
    both = sample_units(df, 0.5, seed=3, unlabelled=True)
    unl = both[both["rul"].isna()]
    assert unl["asset_id"].nunique() == 5
    assert set(unl["asset_id"]).isdisjoint(part["asset_id"])
    # in service: cut at 30-90% of life, so no unlabelled unit reaches its failure
    last = unl.groupby("asset_id")["cycle"].max()
    assert (last >= 15).all() and (last <= 45).all()
    with pytest.raises(ValueError):
        sample_units(df, 0.0, 0)


def test_summary_keys_and_table():
    def seed(r):
        m = {"rmse": r, "score": 10 * r, "mae": r / 2, "coverage": 0.9, "width": 30.0,
             "train_seconds": 5.0, "val_rmse": r, "val_cut_rmse": r, "rmse_gap": 0.5,
             "units_missed": 0.1}
        return {"pinn": dict(m), "baseline": {**m, "rmse": r + 1},
                "shipped": {**m, "chosen": "pinn"},
                "constant": {**m, "rmse": 40.0, "coverage": None, "width": None}}

    s = summarise([seed(10.0), seed(12.0)])
    for model in MODELS:
        for key in ("rmse_mean", "rmse_std", "score_mean", "coverage", "width_mean",
                    "train_seconds_mean"):
            assert key in s[model]
    assert s["pinn"]["rmse_mean"] == pytest.approx(11.0)
    assert s["pinn"]["rmse_std"] == pytest.approx(np.std([10, 12], ddof=1))
    assert s["baseline"]["rmse_mean"] == pytest.approx(12.0)
    text = table(s, "title")
    lines = text.splitlines()
    assert lines[0] == "title" and lines[2].startswith("model")
    assert lines[4].startswith("pinn") and "11.00 ± 1.41" in lines[4]
    assert lines[5].startswith("baseline")
    assert lines[6].startswith("shipped") and s["shipped"]["chosen"] == ["pinn", "pinn"]
    assert lines[7].startswith("constant") and "40.00" in lines[7] and "n/a" in lines[7]


def test_the_constant_row_predicts_the_mean_capped_training_rul():
    train = pd.DataFrame({"rul": [0.0, 10.0, 200.0, np.nan]})  # NaN: an unlabelled row
    test = pd.DataFrame({"rul": [5.0, 15.0]})
    m = score_constant(train, test, cap=20)
    assert m["constant"] == pytest.approx(10.0)  # (0 + 10 + 20) / 3: capped, NaN left out
    assert m["rmse"] == pytest.approx(5.0) and m["coverage"] is None and "score" in m
    assert "score" not in score_constant(train, test, cap=20, phm08=False)
