"""Pump fleet simulator (real ProgPy CentrifugalPumpWithWear): frames, failures, wear, seeds,
drift, cache and the live snapshot. Fleets are 2-3 pumps; every ProgPy run is shared through
module fixtures (one pump costs a few seconds of CPU)."""

import time

import numpy as np
import pandas as pd
import pytest

from features.sources import pump
from features.sources.pump import (
    BIAS_SENSORS,
    DEFAULT_LIVE_AS_OF,
    DEFAULT_START,
    DUTY_V,
    FAILURE_MODES,
    NOISE_STD,
    REGIME_V,
    SAMPLE_PERIOD_S,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
    simulate_pump_fleet,
    simulate_pump_live,
)

SEED = 4  # its first three pumps fail in three different modes (impeller, thrust, radial)
READING_COLUMNS = ["asset_id", "timestamp", "cycle", *SETTING_COLUMNS, *SENSOR_COLUMNS]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("pump-cache")


@pytest.fixture(scope="module")
def fleet(cache_dir):
    """3 pumps, simulated in worker processes, written to the cache."""
    return simulate_pump_fleet(3, SEED, cache_dir=cache_dir, workers=3)


@pytest.fixture(scope="module")
def live():
    return simulate_pump_live(2, SEED, workers=2)


def test_columns_dtypes_and_order(fleet, live):
    readings, events = fleet
    assert list(readings.columns) == READING_COLUMNS
    assert str(readings["asset_id"].dtype) == "string"
    assert str(readings["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert str(readings["cycle"].dtype) == "int64"
    assert all(str(readings[c].dtype) == "float64" for c in SETTING_COLUMNS + SENSOR_COLUMNS)
    assert list(events.columns) == ["asset_id", "timestamp", "cycle", "event", "failure_mode"]
    assert [str(events[c].dtype) for c in events.columns] == [
        "string", "datetime64[ns, UTC]", "int64", "string", "string"]
    live_readings, truth = live
    assert list(live_readings.columns) == READING_COLUMNS
    assert list(truth.columns) == ["asset_id", "cycle", "failure_cycle", "rul"]
    assert str(truth["rul"].dtype) == "float64" and str(truth["asset_id"].dtype) == "string"
    assert readings[SETTING_COLUMNS + SENSOR_COLUMNS].notna().all().all()


def test_sampling_grid_and_start_offsets(fleet):
    readings, _ = fleet
    assert list(readings["asset_id"].unique()) == ["pump-0001", "pump-0002", "pump-0003"]
    for i, (_, g) in enumerate(readings.groupby("asset_id", sort=False)):
        assert g["cycle"].tolist() == list(range(1, len(g) + 1))
        expected = (pd.Timestamp(DEFAULT_START) + pd.Timedelta(hours=5 * i)
                    + pd.to_timedelta((g["cycle"] - 1) * SAMPLE_PERIOD_S, unit="s"))
        assert (g["timestamp"].to_numpy() == expected.to_numpy()).all()


def test_one_failure_per_pump_on_its_last_reading(fleet):
    readings, events = fleet
    assert events["asset_id"].is_unique and len(events) == readings["asset_id"].nunique()
    last = readings.groupby("asset_id", sort=False).tail(1).reset_index(drop=True)
    pd.testing.assert_series_equal(events["asset_id"], last["asset_id"])
    assert (events["timestamp"].to_numpy() == last["timestamp"].to_numpy()).all()
    assert (events["cycle"].to_numpy() == last["cycle"].to_numpy()).all()
    assert (events["event"] == "failure").all()
    assert events["failure_mode"].isin(FAILURE_MODES).all()


def test_lives_and_failure_modes_differ_between_pumps(fleet):
    readings, events = fleet
    lives = readings.groupby("asset_id").size()
    assert lives.nunique() == len(lives)
    hours = lives * SAMPLE_PERIOD_S / 3600
    assert hours.between(4, 30).all()  # fast wear: hours, not months
    assert events["failure_mode"].nunique() >= 2


def test_sensors_follow_wear(fleet):
    readings, events = fleet
    mode = dict(zip(events["asset_id"], events["failure_mode"], strict=True))
    for aid, g in readings.groupby("asset_id", sort=False):
        warm = g[g["cycle"] > 24]  # after ~2 h the thermal masses have warmed up
        k = max(len(warm) // 10, 1)
        hot = warm[["Tt", "Tr"]].max(axis=1)
        # bearing friction grows for every pump: the hotter bearing ends >10 K above its start
        assert hot.iloc[-k:].mean() - hot.iloc[:k].mean() > 10, aid
        if mode[aid] in ("ThrustBearingOverheat", "RadialBearingOverheat"):
            sensor = "Tt" if mode[aid] == "ThrustBearingOverheat" else "Tr"
            assert g[sensor].iloc[-1] > 365  # ProgPy's limit is 370 K
        if mode[aid] == "ImpellerWearFailure":
            # at one fixed supply voltage the worn impeller delivers visibly less flow
            g = g[g["cycle"] > 1]
            spans = g.groupby("V")["cycle"].agg(lambda c: c.max() - c.min())
            same_v = g[g["V"] == spans.idxmax()]["Qout"]
            assert same_v.iloc[:3].mean() - same_v.iloc[-3:].mean() > 5 * NOISE_STD["Qout"]


def test_unit_independent_of_fleet_size_and_of_processes(fleet):
    readings, events = fleet
    r2, e2 = simulate_pump_fleet(2, SEED, workers=1)  # in-process, uncached
    head = readings[readings["asset_id"].isin(["pump-0001", "pump-0002"])]
    pd.testing.assert_frame_equal(r2, head.reset_index(drop=True))
    pd.testing.assert_frame_equal(e2, events.iloc[:2])


def test_different_seed_different_pump(fleet):
    readings, _ = fleet
    other, _ = simulate_pump_fleet(1, SEED + 1, workers=1)
    first = readings[readings["asset_id"] == "pump-0001"]
    n = min(len(first), len(other))
    assert not np.array_equal(other[SENSOR_COLUMNS].to_numpy()[:n],
                              first[SENSOR_COLUMNS].to_numpy()[:n])


def test_cache_round_trip_identical_without_progpy(fleet, cache_dir, monkeypatch):
    assert len(list(cache_dir.glob("*.parquet"))) == 3

    def no_simulation(*args):
        raise AssertionError("cached pumps must not be simulated again")

    monkeypatch.setattr(pump, "_simulate_unit", no_simulation)
    t0 = time.perf_counter()
    readings, events = simulate_pump_fleet(3, SEED, cache_dir=cache_dir)
    assert time.perf_counter() - t0 < 5
    pd.testing.assert_frame_equal(readings, fleet[0])
    pd.testing.assert_frame_equal(events, fleet[1])


def test_bias_drift_changes_exactly_the_biased_sensors(fleet, cache_dir):
    readings, events = fleet
    drifted, d_events = simulate_pump_fleet(3, SEED, drift="bias", cache_dir=cache_dir)
    pd.testing.assert_frame_equal(d_events, events)
    same = [c for c in readings.columns if c not in BIAS_SENSORS]
    pd.testing.assert_frame_equal(drifted[same], readings[same])
    for s in BIAS_SENSORS:
        np.testing.assert_allclose(drifted[s] - readings[s], NOISE_STD[s], rtol=1e-6)


def test_unknown_drift_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="bias.*regime"):
        simulate_pump_fleet(1, SEED, drift="sensor-failure")
    with pytest.raises(ValueError, match="bias.*regime"):
        simulate_pump_live(1, SEED, drift="Bias")


def test_regime_maps_the_same_duty_draws_above_the_training_range():
    normal = pump._unit_params(SEED, 0, regime=False)
    regime = pump._unit_params(SEED, 0, regime=True)
    index = [DUTY_V.index(v) for v in normal["levels"]]
    assert list(regime["levels"]) == [REGIME_V[k] for k in index]
    assert min(REGIME_V) > max(DUTY_V)
    np.testing.assert_array_equal(regime["edges"], normal["edges"])
    assert regime["wear"] == normal["wear"]


def test_live_snapshot_consistent_with_truth(live, fleet):
    readings, truth = live
    assert truth["asset_id"].tolist() == ["pump-live-0001", "pump-live-0002"]
    assert (truth["rul"] >= SAMPLE_PERIOD_S / 3600).all()
    np.testing.assert_allclose(
        truth["rul"], (truth["failure_cycle"] - truth["cycle"]) * SAMPLE_PERIOD_S / 3600)
    frac = truth["cycle"] / truth["failure_cycle"]
    assert frac.between(0.3 - 0.02, 0.95).all()
    groups = readings.groupby("asset_id", sort=False)
    for row, (aid, g) in zip(truth.itertuples(), groups, strict=True):
        assert aid == row.asset_id and g["cycle"].tolist() == list(range(1, row.cycle + 1))
        assert g["timestamp"].iloc[-1] == pd.Timestamp(DEFAULT_LIVE_AS_OF)
        assert (g["timestamp"].diff().dropna() == pd.Timedelta(seconds=SAMPLE_PERIOD_S)).all()
    # other units than the training pumps of the same seed
    first = fleet[0][fleet[0]["asset_id"] == "pump-0001"]
    n = min(len(first), truth["cycle"].iloc[0])
    assert not np.array_equal(readings[SENSOR_COLUMNS].to_numpy()[:n],
                              first[SENSOR_COLUMNS].to_numpy()[:n])
