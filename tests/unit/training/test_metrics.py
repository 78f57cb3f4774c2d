import math

import numpy as np
import pytest

from training import metrics as M


def test_phm08_hand_worked():
    # d = pred - true: late by 10 -> e^1 - 1, early by 13 -> e^1 - 1
    assert M.phm08_score([50], [60]) == pytest.approx(math.e - 1)
    assert M.phm08_score([50], [37]) == pytest.approx(math.e - 1)
    assert M.phm08_score([50, 50], [60, 37]) == pytest.approx(2 * (math.e - 1))
    assert M.phm08_score([10, 20], [10, 20]) == 0.0
    # asymmetric: being late costs more than being early by the same amount
    assert M.phm08_score([50], [70]) > M.phm08_score([50], [30])
    assert M.phm08_score([0], [20]) == pytest.approx(math.exp(2) - 1)


def test_rmse_mae():
    assert M.rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    assert M.mae([0, 0], [3, -4]) == pytest.approx(3.5)


def test_coverage_width_brier():
    y = np.array([1.0, 2.0, 3.0, 10.0])
    assert M.interval_coverage(y, y - 1, y + 1) == 1.0
    assert M.interval_coverage(y, [0, 0, 0, 0], [5, 5, 5, 5]) == 0.75
    assert M.mean_width([0, 1], [2, 5]) == 3.0
    assert M.brier_score([1, 0], [1.0, 0.0]) == 0.0
    assert M.brier_score([1, 0], [0.5, 0.5]) == 0.25
