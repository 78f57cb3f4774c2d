"""Virtual assets from the damage law's time-scaling symmetry (training.augment)."""

import numpy as np
import pandas as pd
import pytest

from tests.layout import FEATURE_COLUMNS, MEASUREMENT_COLUMNS, typed
from training.augment import fleet_paces, time_scaled_readings, virtual_assets, wear_trend

WINDOW = 30


def _readings(asset_id: str, life: int, wear, noise: float = 0.0, seed: int = 0):
    """Raw readings of one run-to-failure asset: sensor_2 = wear(cycle) (+ noise), the
    other measurements constant."""
    cycle = np.arange(1, life + 1)
    values = np.ones((life, len(MEASUREMENT_COLUMNS)))
    values[:, MEASUREMENT_COLUMNS.index("sensor_2")] = wear(cycle.astype(float))
    values += np.random.default_rng(seed).normal(0.0, noise, values.shape)
    r = pd.DataFrame(values, columns=MEASUREMENT_COLUMNS)
    r.insert(0, "cycle", cycle)
    r.insert(0, "timestamp", pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(cycle, "h"))
    r.insert(0, "asset_id", asset_id)
    return r


def _labels(readings: pd.DataFrame) -> pd.DataFrame:
    """The frame fit sees, reduced to what the augmentation reads: asset, cycle, RUL."""
    life = readings.groupby("asset_id")["cycle"].transform("max")
    return readings[["asset_id", "cycle"]].assign(rul=(life - readings["cycle"]).astype(float))


def _exponential(life: int, rate: float):
    return lambda c: np.exp(rate * (c - life))


def test_a_virtual_asset_is_the_same_law_run_k_times_as_fast():
    life, rate, k = 200, 0.02, 1.25
    raw = _readings("u1", life, _exponential(life, rate))
    rows, sources = virtual_assets(
        _labels(raw), raw, FEATURE_COLUMNS, {"u1": [(k, "v")]}, typed(WINDOW), 0
    )
    assert sources == {"u1*1.25": ("u1", "v")}  # (source, donor of the lifetime)
    # the copy fails at life / k, and its RUL falls by one per virtual cycle
    np.testing.assert_allclose(rows["rul"] + rows["cycle"], life / k)
    # its readings follow the exponential law with rate k * rate at its own RUL
    trend, _ = wear_trend(raw[MEASUREMENT_COLUMNS].to_numpy())
    copy = time_scaled_readings(raw, trend, np.zeros_like(trend), k, np.random.default_rng(0),
                                MEASUREMENT_COLUMNS)
    expected = np.exp(-k * rate * (life / k - copy["cycle"].to_numpy()))
    np.testing.assert_allclose(copy["sensor_2"], expected, rtol=2e-3, atol=1e-4)


def test_window_slopes_of_a_copy_are_k_times_the_real_ones():
    # linear wear b * cycle: the window transform's slope is b on the real asset, k b on
    # the copy, because its window spans k times as many real cycles of wear
    b = 0.01
    raw = _readings("u1", 240, lambda c: b * c)
    rows, _ = virtual_assets(
        _labels(raw), raw, FEATURE_COLUMNS, {"u1": [(0.8, "v"), (1.5, "w")]}, typed(WINDOW), 0
    )
    late = rows[rows["cycle"] > WINDOW]
    for vid, k in (("u1*0.8", 0.8), ("u1*1.5", 1.5)):
        np.testing.assert_allclose(late.loc[late["asset_id"] == vid, "sensor_2_slope"], k * b)


def test_a_copy_is_as_noisy_as_the_real_asset():
    # fresh noise per virtual reading: neither averaged away nor repeated on a slow copy
    sigma = 0.1
    raw = _readings("u1", 300, lambda c: np.zeros_like(c), noise=sigma, seed=1)
    trend, residuals = wear_trend(raw[MEASUREMENT_COLUMNS].to_numpy())
    rng = np.random.default_rng(2)
    for k in (0.5, 2.0):
        copy = time_scaled_readings(raw, trend, residuals, k, rng, MEASUREMENT_COLUMNS)
        assert copy["sensor_2"].std() == pytest.approx(sigma, rel=0.15)
        assert abs(np.corrcoef(copy["sensor_2"][:-1], copy["sensor_2"][1:])[0, 1]) < 0.2


def test_the_same_level_is_further_from_failure_on_a_slower_copy():
    life, rate, k = 200, 0.02, 0.8
    raw = _readings("u1", life, _exponential(life, rate))
    trend, _ = wear_trend(raw[MEASUREMENT_COLUMNS].to_numpy())
    slow = time_scaled_readings(raw, trend, np.zeros_like(trend), k, np.random.default_rng(0),
                                MEASUREMENT_COLUMNS)
    level = 0.5
    rul_real = np.interp(level, raw["sensor_2"], life - raw["cycle"])
    rul_slow = np.interp(level, slow["sensor_2"], life / k - slow["cycle"])
    assert rul_slow == pytest.approx(rul_real / k, rel=1e-2)


def test_in_service_assets_and_pace_one_are_not_copied():
    raw = pd.concat(
        [_readings("u1", 150, lambda c: c / 150), _readings("u2", 120, lambda c: c / 150)],
        ignore_index=True,
    )
    frame = _labels(raw)
    frame.loc[frame["asset_id"] == "u2", "rul"] = np.nan  # in service: failure not seen
    rows, sources = virtual_assets(
        frame,
        raw,
        FEATURE_COLUMNS,
        {"u1": [(1.0, "v"), (1.25, "v"), (1.25, "w")], "u2": [(1.25, "v")]},
        typed(WINDOW),
        0,
    )
    assert set(sources) == {"u1*1.25"} and set(rows["asset_id"]) == {"u1*1.25"}
    assert not rows.duplicated(["asset_id", "cycle"]).any()  # one copy per distinct pace


def test_bad_inputs_are_refused_with_a_reason():
    raw = _readings("u1", 60, lambda c: c / 60)
    frame = _labels(raw)
    with pytest.raises(ValueError, match="> 0"):
        virtual_assets(frame, raw, FEATURE_COLUMNS, {"u1": [(0.0, "v")]}, typed(WINDOW), 0)
    with pytest.raises(ValueError, match="no raw readings"):
        virtual_assets(frame, raw.iloc[0:0], FEATURE_COLUMNS, {"u1": [(1.2, "v")]},
                       typed(WINDOW), 0)
    with pytest.raises(ValueError, match="time_scale_copies=0"):
        virtual_assets(frame, raw, ["s0_mean", "cycle"], {"u1": [(1.2, "v")]}, typed(WINDOW), 0)


def test_copies_are_seeded():
    raw = _readings("u1", 150, lambda c: c / 150, noise=0.05)
    frame = _labels(raw)
    a, _ = virtual_assets(frame, raw, FEATURE_COLUMNS, {"u1": [(1.2, "v")]}, typed(WINDOW), 0)
    b, _ = virtual_assets(frame, raw, FEATURE_COLUMNS, {"u1": [(1.2, "v")]}, typed(WINDOW), 0)
    c, _ = virtual_assets(frame, raw, FEATURE_COLUMNS, {"u1": [(1.2, "v")]}, typed(WINDOW), 1)
    pd.testing.assert_frame_equal(a, b)
    assert not np.allclose(a["sensor_2_mean"], c["sensor_2_mean"])


def test_fleet_paces_are_the_lifetime_ratios_of_other_assets():
    lives = {"a": 100, "b": 150, "c": 200}
    frame = pd.concat([_labels(_readings(a, t, lambda c: c)) for a, t in lives.items()])
    paces = fleet_paces(frame, copies=2, seed=0)
    # both others, each with the asset whose lifetime it is (its label is in the copy)
    assert sorted(paces["a"]) == [(100 / 200, "c"), (100 / 150, "b")]
    assert sorted(paces["c"]) == [(200 / 150, "b"), (200 / 100, "a")]
    assert fleet_paces(frame, copies=2, seed=0) == paces  # seeded
    assert all(len(v) == 1 for v in fleet_paces(frame, copies=1, seed=3).values())
    # a budget of 4 virtual assets for 3 failed assets: one copy each
    assert all(len(v) == 1 for v in fleet_paces(frame, 2, 0, max_assets=4).values())
    assert all(v == [] for v in fleet_paces(frame, 2, 0, max_assets=2).values())
    # an asset with another's lifetime is no new pace: "d" lives as long as "a"
    twins = pd.concat([frame, _labels(_readings("d", 100, lambda c: c))], ignore_index=True)
    for v in fleet_paces(twins, 2, 0).values():
        ks = [k for k, _ in v]
        assert 1.0 not in ks and len(set(ks)) == 2


def test_assets_without_a_trend_are_not_copied():
    short = _readings("u1", 2, lambda c: c)
    gap = _readings("u2", 80, lambda c: c / 80)
    gap.loc[5, "sensor_2"] = np.nan
    raw = pd.concat([short, gap], ignore_index=True)
    rows, sources = virtual_assets(
        _labels(raw), raw, FEATURE_COLUMNS, {"u1": [(1.2, "v")], "u2": [(1.2, "v")]},
        typed(WINDOW), 0,
    )
    assert sources == {} and rows.empty
