"""Seeded centrifugal-pump fleet whose data is real NASA ProgPy output (CentrifugalPumpWithWear).

    seed, unit i ─► SeedSequence(seed, spawn_key=(i,)) ─┬─► params: wear rates wA/wRadial/wThrust
                                                        │   (x0), duty profile V(t), Tamb(t), p
                                                        ├─► noise: seeds ProgPy's measurement noise
                                                        └─► cut: where a live pump is observed
    params ─► ProgPy simulate_to_threshold(dt=INTEGRATION_DT_S, save_freq=SAMPLE_PERIOD_S)
           ─► raw trajectory (cycle, settings, noisy sensors, failure_mode)  ◄─► cache_dir/*.parquet
           ─► readings (+ drift)  +  events (one `failure` on each pump's last reading)

Why ProgPy and not a re-implementation: the pump model of Daigle & Goebel (2013) couples the
motor, the impeller and three thermal masses; its four failure modes compete, and which one
ends a life depends on the unit's wear rates and on how hard it is driven. We only choose the
inputs: per-unit initial wear rates (lognormal, the only unit-to-unit difference ProgPy's
model has), a duty profile (V switching every 1-4 h between the levels of ProgPy's own
example, 471.2-571.2 V, with its 100 s ramps and wsync = 0.8 V), ambient temperature (a base
draw plus a daily sine) and per-unit discharge/suction pressures (example values +- 2 %).
Rates are scaled so pumps wear fast (20 pumps of seed 0: lives 6.6 / 10.3 / 15.9 h min /
median / max), which keeps the demo cheap. Each pump starts from ambient temperature with
ProgPy's x0 otherwise (w = 377 rad/s, Q = 0), so its first ~2 h are a warm-up transient.

Integration step: the motor's torque-slip curve is stiff (|lambda| ~ 0.8-1 /s), and explicit
Euler (ProgPy's only method for this model: next_state is overridden, so no rk4) is unstable
from ~2.5 s on: at dt = 5 s the rotor speed w oscillates chaotically (even negative), Qout
with it, and lives come out 2.5-3x too long. At 2 s lives and sensors agree with dt = 1 s
to < 0.1 % (measured), so INTEGRATION_DT_S = 2 (~0.5 s CPU per simulated hour).

Failure modes: impeller wear and both bearing overheats all occur (seed 0, 20 pumps: 9
impeller, 6 radial, 5 thrust). PumpOilOverheat
(To >= 350 K) is physically almost unreachable: the oil settles at (Tt + 3 Tr + 1.5 Tamb)/5.5,
below 350 K until both bearings are near their own 370 K limits, so a bearing fails first.

Noise: ProgPy's own measurement_noise (gaussian, NOISE_STD per output), drawn from numpy's
global RNG when the outputs are first read; we seed it from the unit's SeedSequence and
restore it afterwards, so a unit is bit-identical in any process. process_noise = 0: the
wear-rate draws already give the unit-to-unit spread, and state noise on w/Q/temperatures
at a 2 s step would only add the same kind of jitter as the measurement noise.

Drift (`drift=`), never changing the random draws: "bias" adds one noise std to Tt, Tr, To
(a calibration offset); "regime" runs the pumps at supply voltages above the training range
(REGIME_V: same draws, each duty level mapped to a higher one; faster, hotter pumps that
fail within a few hours) and is simulated (and cached) separately: it changes the physics.
"""

from __future__ import annotations

import functools
import hashlib
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from features.atomic import write_parquet
from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_FAILURE, TIMESTAMP

SAMPLE_PERIOD_S = 300  # one reading every 5 minutes of simulated time
INTEGRATION_DT_S = 2.0  # ProgPy Euler step: unstable above ~2.5 s (see module docstring)
SETTING_COLUMNS = ["Tamb", "V", "pdisch", "psuc", "wsync"]  # ProgPy inputs (operating settings)
SENSOR_COLUMNS = ["w", "Qout", "Tt", "Tr", "To"]  # ProgPy outputs
FAILURE_MODES = ["ImpellerWearFailure", "ThrustBearingOverheat", "RadialBearingOverheat",
                 "PumpOilOverheat"]
FAILURE_MODE = "failure_mode"
DRIFTS = ("bias", "regime")

DEFAULT_START = datetime(2024, 1, 1, tzinfo=UTC)
DEFAULT_LIVE_AS_OF = datetime(2024, 3, 1, tzinfo=UTC)
ASSET_OFFSET = timedelta(hours=5)  # pump i starts at start + i * 5 h
LIVE_SEED_OFFSET = 1000  # live pumps are other units than the training fleet of the same seed

#: Measurement noise std per output (rad/s, m^3/s, K): a tachometer's ~5 rpm, ~1 % of the
#: ~0.1 m^3/s flow, a quarter kelvin for the RTDs. Also the size of the "bias" drift.
NOISE_STD = {"w": 0.5, "Qout": 0.001, "Tt": 0.25, "Tr": 0.25, "To": 0.25}
BIAS_SENSORS = ("Tt", "Tr", "To")

#: Median initial wear rates (ProgPy units) and their log-std, clipped at +-2 std; tuned on
#: 20 pumps (seed 0) so that each of the three reachable modes ends some lives, median ~10 h.
_WEAR_MEDIAN = {"wA": 0.0050, "wRadial": 0.60e-10, "wThrust": 0.30e-10}
_WEAR_LOGSTD = 0.35
DUTY_V = (471.2389, 504.5722, 537.9056, 571.2389)  # ProgPy example range, 4 levels
REGIME_V = (600.0, 620.0, 640.0, 660.0)  # "regime" drift: above anything trained on
_DUTY_HOURS = (1.0, 4.0)  # a duty level holds this long (uniform)
_RAMP_S = 100.0  # level changes ramp like ProgPy's example
_WSYNC_PER_V = 0.8  # wsync = 0.8 V, as in ProgPy's pump example and tests
_PDISCH, _PSUC = 928654.0, 239179.0  # ProgPy example pressures (Pa)
_HORIZON_S = 72 * 3600.0  # no clipped draw lives this long; reaching it is an error


@functools.cache
def _version() -> str:
    """Everything that determines a trajectory besides (seed, unit, kind, regime)."""
    from importlib.metadata import version

    spec = (version("progpy"), SAMPLE_PERIOD_S, INTEGRATION_DT_S, NOISE_STD, _WEAR_MEDIAN,
            _WEAR_LOGSTD, DUTY_V, REGIME_V, _DUTY_HOURS, _RAMP_S, _WSYNC_PER_V, _PDISCH, _PSUC,
            _HORIZON_S, "pump-v1")
    return hashlib.sha1(repr(spec).encode()).hexdigest()[:12]


def _seeds(unit_seed: int, i: int) -> list[np.random.SeedSequence]:
    """(params, noise, cut) streams of unit i: depend on (seed, i) only, not on n_assets."""
    return np.random.SeedSequence(unit_seed, spawn_key=(i,)).spawn(3)


def _unit_params(unit_seed: int, i: int, regime: bool) -> dict:
    """Unit i's physics draws; `regime` only relabels the drawn duty levels."""
    rng = np.random.default_rng(_seeds(unit_seed, i)[0])
    z = np.clip(rng.standard_normal(len(_WEAR_MEDIAN)), -2.0, 2.0)
    wear = {k: m * float(np.exp(_WEAR_LOGSTD * zk))
            for (k, m), zk in zip(_WEAR_MEDIAN.items(), z, strict=True)}
    n_seg = int(_HORIZON_S / 3600 / _DUTY_HOURS[0]) + 1
    edges = np.concatenate([[0.0], np.cumsum(rng.uniform(*_DUTY_HOURS, n_seg - 1) * 3600)])
    levels = np.asarray(REGIME_V if regime else DUTY_V)[rng.integers(0, len(DUTY_V), n_seg)]
    tamb = (rng.normal(293.0, 3.0), rng.uniform(2.0, 5.0), rng.uniform(0.0, 2 * np.pi))
    pdisch, psuc = rng.normal(1.0, 0.02, 2) * (_PDISCH, _PSUC)
    return {"wear": wear, "edges": edges, "levels": levels, "tamb": tamb,
            "pdisch": pdisch, "psuc": psuc}


def _loading(p: dict, t) -> dict[str, np.ndarray]:
    """ProgPy inputs at time(s) t (s): what the model is driven with and what is reported."""
    t = np.asarray(t, dtype=float)
    k = np.searchsorted(p["edges"], t, side="right") - 1
    level, prev = p["levels"][k], p["levels"][np.maximum(k - 1, 0)]
    v = prev + (level - prev) * np.clip((t - p["edges"][k]) / _RAMP_S, 0.0, 1.0)
    base, amp, phase = p["tamb"]
    tamb = base + amp * np.sin(2 * np.pi * t / 86400.0 + phase)
    return {"Tamb": tamb, "V": v, "pdisch": np.full_like(t, p["pdisch"]),
            "psuc": np.full_like(t, p["psuc"]), "wsync": _WSYNC_PER_V * v}


def _unit_model(p: dict, switch_at_s: float | None = None, then: dict | None = None):
    """(ProgPy model, loading function, x0) of a unit with draws `p`: driven by its duty
    profile, or from `switch_at_s` on by the constant inputs `then` (a what-if's truth)."""
    from progpy.models import CentrifugalPumpWithWear

    with warnings.catch_warnings():
        # The wear rates are states of this model (set in x0 below), so its warning that the
        # wA/wRadial/wThrust *parameters* get overwritten is exactly the intended behaviour.
        warnings.filterwarnings("ignore", "wA, wRadial, and wThrust", UserWarning)
        m = CentrifugalPumpWithWear(process_noise=0.0, measurement_noise=dict(NOISE_STD))

    def load(t, x=None):
        if switch_at_s is not None and t >= switch_at_s:
            return m.InputContainer({c: float(then[c]) for c in SETTING_COLUMNS})
        u = _loading(p, t)
        return m.InputContainer({c: float(u[c]) for c in SETTING_COLUMNS})

    u0 = load(0.0)
    x0 = m.initialize(u0)
    for s in ("Tt", "Tr", "To"):  # the pump starts at ambient temperature, not ProgPy's 290 K
        x0[s] = u0["Tamb"]
    for k, w in p["wear"].items():
        x0[k] = w
    return m, load, x0


def live_time_to_failure(seed: int, i: int, from_s: float, profile: dict) -> tuple[float, str]:
    """Live pump i of `seed` (as simulate_pump_live draws it) run on its duty profile until
    `from_s`, then at the constant `profile`: (seconds from `from_s` to its first failure,
    the mode), inf if none within the simulator's horizon. The truth a what-if is scored
    against (benchmarks/whatif.py): the same pump, the same physics, the asked loading."""
    p = _unit_params(seed + LIVE_SEED_OFFSET, i, False)
    m, load, x0 = _unit_model(p, switch_at_s=from_s, then=profile)
    res = m.simulate_to_threshold(load, x=x0, events=FAILURE_MODES, dt=INTEGRATION_DT_S,
                                  save_freq=_HORIZON_S, horizon=from_s + _HORIZON_S)
    met = m.threshold_met(res.states[-1])
    modes = [e for e in FAILURE_MODES if met[e]]
    if not modes:
        return float("inf"), ""
    return float(res.times[-1]) - from_s, modes[0]


def _simulate_unit(unit_seed: int, i: int, regime: bool) -> pd.DataFrame:
    """Run unit i to its first failure: raw trajectory on the sampling grid (module-level, so a
    spawned worker can run it)."""

    p = _unit_params(unit_seed, i, regime)
    m, load, x0 = _unit_model(p)
    res = m.simulate_to_threshold(load, x=x0, events=FAILURE_MODES, dt=INTEGRATION_DT_S,
                                  save_freq=SAMPLE_PERIOD_S, horizon=_HORIZON_S)
    met = m.threshold_met(res.states[-1])
    modes = [e for e in FAILURE_MODES if met[e]]
    if not modes:
        raise RuntimeError(f"pump unit {i} (seed {unit_seed}) did not fail within the horizon")
    times = np.asarray(res.times, dtype=float)
    keep = np.flatnonzero(np.mod(times, SAMPLE_PERIOD_S) == 0)  # drops the off-grid failure step
    state = np.random.get_state()
    try:  # ProgPy adds measurement noise from np.random as the (lazy) outputs are first read
        np.random.seed(_seeds(unit_seed, i)[1].generate_state(8))
        z = np.array([[float(o[s]) for s in SENSOR_COLUMNS] for o in res.outputs])
    finally:
        np.random.set_state(state)
    u = _loading(p, times[keep])
    raw = pd.DataFrame({CYCLE: np.arange(1, len(keep) + 1, dtype="int64")})
    for c in SETTING_COLUMNS:
        raw[c] = u[c]
    for j, s in enumerate(SENSOR_COLUMNS):
        raw[s] = z[keep, j]
    raw[FAILURE_MODE] = modes[0]  # first in FAILURE_MODES if two crossed in the same step
    return raw


def _trajectories(kind: str, unit_seed: int, n: int, regime: bool, cache_dir: Path | None,
                  workers: int) -> list[pd.DataFrame]:
    """Raw trajectories of units 0..n-1, read from / written to cache_dir when given."""
    name = f"{kind}-seed{unit_seed}-{'regime-' if regime else ''}{{i:05d}}-{_version()}.parquet"
    paths = [None if cache_dir is None else Path(cache_dir) / name.format(i=i) for i in range(n)]
    out = [pd.read_parquet(q) if q is not None and q.exists() else None for q in paths]
    todo = [i for i in range(n) if out[i] is None]
    procs = (os.cpu_count() or 1) if workers == 0 and n >= 4 else max(workers, 1)
    if procs > 1 and len(todo) > 1:
        import progpy.models  # noqa: F401  (once here: forked workers inherit the import)

        with ProcessPoolExecutor(min(procs, len(todo))) as pool:
            sims = list(pool.map(_simulate_unit, [unit_seed] * len(todo), todo,
                                 [regime] * len(todo)))
    else:
        sims = [_simulate_unit(unit_seed, i, regime) for i in todo]
    for i, raw in zip(todo, sims, strict=True):
        out[i] = raw
        if paths[i] is not None:
            write_parquet(raw, paths[i])
    return out


def _utc_ns(t: datetime) -> int:
    ts = pd.Timestamp(t)
    return (ts.tz_localize(UTC) if ts.tz is None else ts).value


def _readings(ids: list[str], trajs: list[pd.DataFrame], first_ns: list[int],
              drift: str | None) -> pd.DataFrame:
    lengths = [len(t) for t in trajs]
    raw = pd.concat(trajs, ignore_index=True)
    cycle = raw[CYCLE].to_numpy(dtype="int64")
    ns = np.repeat(np.asarray(first_ns, dtype="int64"), lengths) + (cycle - 1) * (
        SAMPLE_PERIOD_S * 10**9)
    df = pd.DataFrame({
        ASSET_ID: pd.array(np.repeat(ids, lengths), dtype="string"),
        TIMESTAMP: pd.to_datetime(ns, utc=True).astype("datetime64[ns, UTC]"),
        CYCLE: cycle,
    })
    for c in SETTING_COLUMNS + SENSOR_COLUMNS:
        df[c] = raw[c].to_numpy(dtype="float64")
    if drift == "bias":
        for s in BIAS_SENSORS:
            df[s] = df[s] + NOISE_STD[s]
    return df


def _check_drift(drift: str | None) -> None:
    if drift is not None and drift not in DRIFTS:
        raise ValueError(f"unknown pump drift {drift!r}: choose None, 'bias' or 'regime'")


def simulate_pump_fleet(n_assets: int, seed: int, *, start: datetime = DEFAULT_START,
                        drift: str | None = None, prefix: str = "pump",
                        cache_dir: Path | None = None, workers: int = 0,
                        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run-to-failure fleet -> (readings, events).

    Pump i's cycle c is stamped start + i*5 h + (c-1)*SAMPLE_PERIOD_S; its last reading is
    the last sample at or before the first ProgPy threshold crossing and carries the one
    `failure` event (RUL 0 there), with the mode that crossed. workers: 0 = one process per
    CPU core for >= 4 pumps (else in-process), 1 = in-process, k = k processes.
    """
    _check_drift(drift)
    trajs = _trajectories("fleet", seed, n_assets, drift == "regime", cache_dir, workers)
    ids = [f"{prefix}-{i + 1:04d}" for i in range(n_assets)]
    t0 = _utc_ns(start)
    firsts = [t0 + i * int(ASSET_OFFSET.total_seconds()) * 10**9 for i in range(n_assets)]
    readings = _readings(ids, trajs, firsts, drift)
    last = readings.groupby(ASSET_ID, sort=False, observed=True).tail(1)
    events = pd.DataFrame({
        ASSET_ID: last[ASSET_ID].to_numpy(),
        TIMESTAMP: last[TIMESTAMP].to_numpy(),
        CYCLE: last[CYCLE].to_numpy(),
        EVENT: pd.array([EVENT_FAILURE] * n_assets, dtype="string"),
        FAILURE_MODE: pd.array([str(t[FAILURE_MODE].iloc[-1]) for t in trajs], dtype="string"),
    })
    events[ASSET_ID] = events[ASSET_ID].astype("string")
    events[TIMESTAMP] = pd.to_datetime(events[TIMESTAMP], utc=True).astype("datetime64[ns, UTC]")
    return readings, events


def simulate_pump_live(n_assets: int, seed: int, *, as_of: datetime = DEFAULT_LIVE_AS_OF,
                       drift: str | None = None, life_fraction=(0.3, 0.95),
                       prefix: str = "pump-live", cache_dir: Path | None = None,
                       workers: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In-service pumps observed at as_of -> (readings, truth).

    Units of seed + LIVE_SEED_OFFSET (not the training pumps), each simulated to failure and
    cut at a random fraction of its life in life_fraction; its last reading is stamped as_of,
    earlier ones SAMPLE_PERIOD_S apart before it. truth = [asset_id, cycle (last observed),
    failure_cycle, rul]: rul in hours from the last reading to failure, >= one period.
    """
    _check_drift(drift)
    unit_seed = seed + LIVE_SEED_OFFSET
    full = _trajectories("live", unit_seed, n_assets, drift == "regime", cache_dir, workers)
    ids = [f"{prefix}-{i + 1:04d}" for i in range(n_assets)]
    lo, hi = life_fraction
    trajs, firsts, rows = [], [], []
    end = _utc_ns(as_of)
    for i, traj in enumerate(full):
        frac = np.random.default_rng(_seeds(unit_seed, i)[2]).uniform(lo, hi)
        life = len(traj)
        last = int(np.clip(np.floor(frac * life), 1, life - 1))
        trajs.append(traj.iloc[:last])
        firsts.append(end - (last - 1) * SAMPLE_PERIOD_S * 10**9)
        rows.append((ids[i], last, life, (life - last) * SAMPLE_PERIOD_S / 3600.0))
    truth = pd.DataFrame(rows, columns=[ASSET_ID, CYCLE, "failure_cycle", "rul"])
    truth[ASSET_ID] = truth[ASSET_ID].astype("string")
    truth[[CYCLE, "failure_cycle"]] = truth[[CYCLE, "failure_cycle"]].astype("int64")
    truth["rul"] = truth["rul"].astype("float64")
    return _readings(ids, trajs, firsts, drift), truth
