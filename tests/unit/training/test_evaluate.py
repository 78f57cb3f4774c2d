"""The metrics the gates read: scored on the capped target, coverage on the uncapped RUL."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from training.evaluate import constant_rmse, evaluate

FRAME = pd.DataFrame({"asset_id": ["a", "a", "a", "b"], "cycle": [1, 2, 3, 1],
                      "rul": [150.0, 100.0, 99.0, 20.0]})


def test_constant_rmse_is_scored_on_the_capped_target():
    # capped at 100: targets 100, 100, 99, 20; predicting 100 misses only the last two
    assert constant_rmse(100.0, FRAME, cap=100.0) == pytest.approx(np.sqrt((1 + 80**2) / 4))


def test_evaluate_scores_capped_rul_and_uncapped_coverage():
    class Predictor:
        spec = SimpleNamespace(rul_cap=100.0)

        def predict(self, df, horizon, level=None, out_of_fold=False):
            rul = np.minimum(df["rul"].to_numpy(), 100.0)  # perfect on the capped scale
            return pd.DataFrame({"rul": rul, "rul_lower": rul - 5, "rul_upper": rul + 5,
                                 "p_fail": (rul <= horizon).astype(float)}, index=df.index)

    m = evaluate(Predictor(), FRAME, horizon=30)
    assert m["rmse"] == m["mae"] == 0.0 and m["n_rows"] == 4.0
    assert m["coverage"] == 0.75  # the uncapped 150 lies outside [95, 105]
    assert m["last_rmse"] == 0.0
