"""Simulator scenarios: two fault modes (FD003-like), six regimes (FD002-like), and
defaults that stay bit-for-bit what they were before the scenarios existed."""

import hashlib

import numpy as np
import pandas as pd
import pytest

from features.contract import EVENT_COLUMNS
from features.sources.simulator import (
    NOISE_STD,
    READING_COLUMNS,
    REGIME_SETTINGS,
    SHIFT_AT_FAILURE,
    fault_modes_of,
    regimes_of,
    simulate_fleet,
    simulate_live,
)
from features.validation import validate_readings
from tests.layout import SENSOR_COLUMNS, SETTING_COLUMNS, TURBOFAN


def _digest(df: pd.DataFrame) -> str:
    """Exact fingerprint of a frame: raw bytes (and dtypes) of every column, in order."""
    h = hashlib.sha256()
    for c in df.columns:
        s = df[c]
        if str(s.dtype).startswith("datetime64"):
            a = s.dt.tz_convert(None).to_numpy().astype("int64")
        elif s.dtype == "string" or s.dtype == object:
            a = np.frombuffer("|".join(s.astype(str)).encode(), dtype=np.uint8)
        else:
            a = np.ascontiguousarray(s.to_numpy())
        h.update(c.encode())
        h.update(str(a.dtype).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


# ---- defaults unchanged (digests and values recorded from the code before the scenarios) ----

_PINNED = {
    "fleet_12_s7": (
        lambda **kw: simulate_fleet(12, seed=7, **kw),
        ("abca6c7b9963df86", "79af00e8c9bae5ff", 2684),
    ),
    "fleet_5_s0": (
        lambda **kw: simulate_fleet(5, seed=0, **kw),
        ("6d5506097e925a81", "ae137c7d40c0617f", 1135),
    ),
    "live_9_s11": (
        lambda **kw: simulate_live(9, seed=11, **kw),
        ("9d7b566ba73ea1a1", "9b16d86f09d0475f", 1389),
    ),
    "fleet_6_s3_drift": (
        lambda **kw: simulate_fleet(
            6,
            seed=3,
            drift={
                "new_regime": True,
                "bias_sensors": ["sensor_4"],
                "bias_magnitude": 2.0,
                "onset_cycle": 30,
            },
            **kw,
        ),
        ("5a98b05ca83ed416", "9c320d6b3d9af66d", 1394),
    ),
    "live_6_s5_drift": (
        lambda **kw: simulate_live(
            6, seed=5, drift={"new_regime": True, "regime_fraction": 0.3}, **kw
        ),
        ("45dc9a8119ee8dfa", "b0cb304fba3abaa3", 979),
    ),
}


@pytest.mark.parametrize("case", sorted(_PINNED))
def test_defaults_bit_for_bit_as_before(case):
    make, (readings_digest, second_digest, n_rows) = _PINNED[case]
    r, second = make()
    assert (_digest(r), _digest(second), len(r)) == (readings_digest, second_digest, n_rows)
    r1, second1 = make(fault_modes=1, regimes=1)
    pd.testing.assert_frame_equal(r, r1)
    pd.testing.assert_frame_equal(second, second1)


def test_defaults_pinned_values():
    r, e = simulate_fleet(3, seed=7)
    first = r.iloc[0]
    assert first["op_setting_1"] == 0.0035 and first["op_setting_3"] == 100.0
    assert (first["sensor_4"], first["sensor_9"]) == (1409.25, 9062.48)
    assert (first["sensor_15"], first["sensor_17"], first["sensor_21"]) == (8.4131, 391.0, 23.4118)
    last = r.iloc[-1]
    assert (last["asset_id"], last["cycle"], last["sensor_4"]) == ("sim-0003", 179, 1429.23)
    assert e["cycle"].tolist() == [171, 288, 179]
    assert e["timestamp"].iloc[1] == pd.Timestamp("2024-01-13 04:00", tz="UTC")
    _, truth = simulate_live(3, seed=11)
    assert truth["cycle"].tolist() == [84, 152, 194]
    assert truth["failure_cycle"].tolist() == [195, 170, 216]


# ---- two fault modes ----


@pytest.fixture(scope="module")
def two_modes():
    r, e = simulate_fleet(40, seed=7, fault_modes=2)
    return r, e, fault_modes_of(40, 7, fault_modes=2)


def test_both_modes_occur_and_are_seeded(two_modes):
    r, e, modes = two_modes
    assert set(modes) == {"hpc", "fan"}
    assert min((modes == "hpc").sum(), (modes == "fan").sum()) >= 8
    np.testing.assert_array_equal(modes, fault_modes_of(40, 7, fault_modes=2))
    assert not np.array_equal(modes, fault_modes_of(40, 8, fault_modes=2))
    assert set(fault_modes_of(40, 7, fault_modes=1)) == {"hpc"}
    r2, e2 = simulate_fleet(40, seed=7, fault_modes=2)
    pd.testing.assert_frame_equal(r, r2)
    pd.testing.assert_frame_equal(e, e2)


def test_mode_trends_differ_in_sign(two_modes):
    r, e, modes = two_modes
    mode = r["asset_id"].map(dict(zip(e["asset_id"], modes, strict=True)))
    early = r.groupby("asset_id").head(20).groupby(mode)[SENSOR_COLUMNS].mean()
    late = r.groupby("asset_id").tail(10).groupby(mode)[SENSOR_COLUMNS].mean()
    delta = late - early
    hpc, fan = delta.loc["hpc"], delta.loc["fan"]
    # HPC (FD001): P30, W31/W32 fall, BPR and fan speed rise; fan mode the other way.
    for s in ["sensor_7", "sensor_12", "sensor_20", "sensor_21"]:
        assert hpc[s] < 0 < fan[s], s
    for s in ["sensor_8", "sensor_13", "sensor_15"]:
        assert hpc[s] > 0 > fan[s], s
    # Both still wear the hot section: temperatures rise, the HPC fault more.
    assert hpc["sensor_4"] > fan["sensor_4"] > 8


def test_mode_lifetimes_differ(two_modes):
    _, e, modes = two_modes
    life = e["cycle"].to_numpy()
    hpc, fan = life[modes == "hpc"], life[modes == "fan"]
    assert fan.mean() - hpc.mean() > 50
    assert 128 <= hpc.min() and hpc.max() <= 362
    assert 150 <= fan.min() and fan.max() <= 525


def test_hpc_assets_of_a_two_mode_fleet_are_the_default_assets(two_modes):
    r, e, modes = two_modes
    base, base_e = simulate_fleet(40, seed=7)
    hpc_ids = e["asset_id"][modes == "hpc"]
    pd.testing.assert_frame_equal(
        r[r["asset_id"].isin(hpc_ids)].reset_index(drop=True),
        base[base["asset_id"].isin(hpc_ids)].reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(
        e[modes == "hpc"].reset_index(drop=True), base_e[modes == "hpc"].reset_index(drop=True)
    )


# ---- six regimes ----


@pytest.fixture(scope="module")
def six_regimes():
    return simulate_fleet(40, seed=7, regimes=6)


def test_all_six_setting_points_occur(six_regimes):
    r, _ = six_regimes
    rounded = r[SETTING_COLUMNS].round({"op_setting_1": 0, "op_setting_2": 2, "op_setting_3": 0})
    points = set(map(tuple, rounded.to_numpy().tolist()))
    assert points == set(map(tuple, REGIME_SETTINGS.tolist()))
    assert set(r["op_setting_3"]) == {60.0, 100.0}  # TRA exact
    reg = regimes_of(r)
    np.testing.assert_allclose(r[SETTING_COLUMNS].to_numpy(), REGIME_SETTINGS[reg], atol=0.01)
    assert np.bincount(reg, minlength=6).min() > 0.1 * len(r)
    # A per-cycle draw: consecutive cycles of an asset change regime most of the time.
    a = reg[(r["asset_id"] == "sim-0001").to_numpy()]
    assert (np.diff(a) != 0).mean() > 0.7


def test_regime_levels_dwarf_the_degradation_shift(six_regimes):
    r, _ = six_regimes
    means = r.groupby(regimes_of(r))[SENSOR_COLUMNS].mean()
    spread = means.max() - means.min()
    for s in ["sensor_2", "sensor_3", "sensor_4", "sensor_7", "sensor_8", "sensor_12"]:
        j = SENSOR_COLUMNS.index(s)
        assert spread[s] > 10 * abs(SHIFT_AT_FAILURE[j]), s
    for s in ["sensor_15", "sensor_17", "sensor_20", "sensor_21"]:
        assert spread[s] > 10 * abs(SHIFT_AT_FAILURE[SENSOR_COLUMNS.index(s)]), s
    # Even the two closest regimes (25 kft part throttle vs 35 kft) sit far apart on P30.
    gaps = np.diff(np.sort(means["sensor_7"].to_numpy()))
    assert gaps.min() > 5 * abs(SHIFT_AT_FAILURE[SENSOR_COLUMNS.index("sensor_7")])
    # Constant channels take one constant per regime (here T2).
    assert r.groupby(regimes_of(r))["sensor_1"].nunique().max() == 1
    assert means["sensor_1"].nunique() == 6


def test_sea_level_cycles_and_lives_match_the_default_fleet(six_regimes):
    r, e = six_regimes
    base, base_e = simulate_fleet(40, seed=7)
    pd.testing.assert_frame_equal(e, base_e)  # same assets, same lives
    sea = regimes_of(r) == 0
    pd.testing.assert_frame_equal(r[sea].reset_index(drop=True), base[sea].reset_index(drop=True))


@pytest.mark.parametrize("fault_modes", [1, 2])
def test_live_truncation_agrees_with_full_trajectories(fault_modes):
    kw = {"fault_modes": fault_modes, "regimes": 6}
    full, events = simulate_fleet(12, seed=5, **kw)
    live, truth = simulate_live(12, seed=5, **kw)
    np.testing.assert_array_equal(truth["failure_cycle"], events["cycle"])
    cols = [*SETTING_COLUMNS, *SENSOR_COLUMNS]
    for i, last in enumerate(truth["cycle"]):
        f = full[(full["asset_id"] == f"sim-{i + 1:04d}") & (full["cycle"] <= last)]
        lv = live[live["asset_id"] == f"live-{i + 1:04d}"]
        assert len(lv) == last
        np.testing.assert_array_equal(f[cols].to_numpy(), lv[cols].to_numpy())


# ---- both together, drift, contract ----


def test_fd004_like_fleet_keeps_contract_and_validates():
    r, e = simulate_fleet(20, seed=3, fault_modes=2, regimes=6)
    base, base_e = simulate_fleet(3, seed=3)
    assert list(r.columns) == READING_COLUMNS and list(e.columns) == EVENT_COLUMNS
    assert r.dtypes.equals(base.dtypes) and e.dtypes.equals(base_e.dtypes)
    _, truth = simulate_live(20, seed=3, fault_modes=2, regimes=6)
    assert list(truth.columns) == list(simulate_live(3, seed=3)[1].columns)
    res = validate_readings(r, TURBOFAN)
    assert res.counts["quarantined"] == 0 and len(res.valid) == len(r)


def test_drift_works_with_scenarios():
    kw = {"fault_modes": 2, "regimes": 6}
    base, _ = simulate_fleet(10, seed=3, **kw)
    biased, _ = simulate_fleet(
        10, seed=3, drift={"bias_sensors": ["sensor_4"], "bias_magnitude": 3.0}, **kw
    )
    shift = biased["sensor_4"] - base["sensor_4"]
    j4 = SENSOR_COLUMNS.index("sensor_4")
    assert shift.mean() == pytest.approx(3.0 * NOISE_STD[j4], rel=0.02)

    drifted, _ = simulate_fleet(10, seed=3, drift={"new_regime": True, "onset_cycle": 50}, **kw)
    unseen = (drifted["op_setting_1"].round(1) == 15.0) & (drifted["op_setting_3"] == 80.0)
    assert 0.3 < unseen[drifted["cycle"] >= 50].mean() < 0.7
    assert not unseen[drifted["cycle"] < 50].any()
    same = ~unseen.to_numpy()
    pd.testing.assert_frame_equal(
        drifted[same].reset_index(drop=True), base[same].reset_index(drop=True)
    )
    # The unseen point's levels lie between the 20 and 25 kft regimes' levels.
    p30 = drifted.loc[unseen, "sensor_7"].mean()
    assert 175 < p30 < 334


def test_bad_scenario_arguments_are_refused():
    with pytest.raises(ValueError, match="fault_modes"):
        simulate_fleet(2, seed=0, fault_modes=3)
    with pytest.raises(ValueError, match="regimes"):
        simulate_live(2, seed=0, regimes=4)
    with pytest.raises(ValueError, match="fault_modes"):
        fault_modes_of(2, 0, fault_modes=0)
