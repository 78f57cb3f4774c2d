import numpy as np
import pytest

from training.conformal import ConformalCalibration


def _data(n, rng):
    true = rng.uniform(0, 125, n)
    # heteroscedastic, skewed errors: bigger in mid-life
    pred = true + rng.gamma(2.0, 2.0 + 0.1 * true, n) - 2.0 * (2.0 + 0.1 * true)
    return np.clip(pred, 0, None), true


@pytest.mark.parametrize("level", [0.8, 0.9])
def test_interval_coverage_on_fresh_data(level):
    rng = np.random.default_rng(0)
    cal = ConformalCalibration.fit(*_data(3000, rng))
    pred, true = _data(20000, rng)
    lo, hi = cal.interval(pred, level)
    cov = np.mean((true >= lo) & (true <= hi))
    assert level - 0.02 <= cov <= level + 0.04
    assert (lo >= 0).all() and (hi >= lo).all()
    assert len(cal.residuals) > 1  # Mondrian bins were formed


def test_p_fail_is_a_cdf_and_calibrated():
    rng = np.random.default_rng(1)
    cal = ConformalCalibration.fit(*_data(3000, rng))
    pred, true = _data(20000, rng)
    p10, p30, p60 = (cal.p_fail(pred, h) for h in (10, 30, 60))
    assert ((p10 <= p30) & (p30 <= p60)).all()
    assert p10.min() >= 0 and p60.max() <= 1
    # calibration in the large: mean predicted probability ~ observed frequency
    assert abs(p30.mean() - np.mean(true <= 30)) < 0.03


def test_roundtrip_and_small_sets():
    rng = np.random.default_rng(2)
    cal = ConformalCalibration.fit(*_data(500, rng))
    back = ConformalCalibration.from_dict(cal.to_dict())
    pred = np.array([5.0, 60.0, 120.0])
    np.testing.assert_allclose(back.interval(pred, 0.9), cal.interval(pred, 0.9), atol=1e-3)
    tiny = ConformalCalibration.fit(np.array([1.0, 2.0]), np.array([1.5, 2.5]))
    lo, hi = tiny.interval(np.array([10.0]), 0.9)
    assert np.isinf(hi[0])  # too few residuals for a 90% bound: honest, unbounded
