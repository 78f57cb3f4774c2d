"""POST /whatif as plain functions: an asset and a future operating profile -> RUL under it.

    pump (physics, NASA ProgPy CentrifugalPumpWithWear):
      the current life's readings (features.datastore) ─► ProgPy ParticleFilter, from the
      life start (a new pump: ProgPy's x0 wear state) over every reading: estimates the
      12 states, the three wear RATES included ─► samples of the state now
        ├─► simulated to threshold under the CURRENT profile (the last hour's settings)
        └─► simulated to threshold under the REQUESTED profile
      ─► RUL samples (hours): median, interval, p_fail(horizon), the mode that ends each life
    any other type (learned model only): the champion on the asset's online features with
      the operating-setting features replaced ─► `method: "learned model, extrapolation"`

Why a particle filter, not ProgPy's UKF: ProgPy's UKF (filterpy underneath) calls the model
once per sigma point per step (25 points x 150 steps of 2 s per 5-minute reading), while its
ParticleFilter moves every particle in ONE vectorised next_state call (the pump model is
vectorised): ~0.3 ms per step for 300 particles. The wear rates are positive, span a factor
~4 across the fleet and enter the physics multiplicatively; particles drawn log-uniformly
carry that prior as it is, where a UKF needs a Gaussian in a space where 1e-11 and 1e+2 share
one covariance matrix.

Which states are observable: w, Qout, Tt, Tr, To directly; A (impeller area) through the flow
and speed, rThrust / rRadial (friction) through the bearing temperatures; the wear rates
wA / wRadial / wThrust only through how those drift over time, hence the whole life. The
filter starts at the life start from ProgPy's new-pump x0 (A, rRadial, rThrust known), the
fast states from the first reading, the wear rates from WEAR_RATE_PRIOR. Small process
noise (PF_PROCESS_NOISE) keeps the particles diverse after resampling.

Why not ProgPy's MonteCarlo predictor for the forward run: it calls simulate_to_threshold
once per sample, ~1.6 s per sample per 10 simulated hours at dt = 2 s; 100 samples x 2
profiles would be minutes. The same model's vectorised next_state / threshold_met over all
samples at once, at the simulator's step (features.sources.pump.INTEGRATION_DT_S), is
~100x cheaper and is the same physics.

Bounds: at most MAX_READINGS readings in the estimate, MAX_PARTICLES particles, MAX_SAMPLES
forward samples, MAX_SIM_HOURS simulated ahead (a sample alive then is censored), and
TIME_BUDGET_S of wall time for the whole call; one physics call at a time per process
(a lock: it is CPU-bound, and ProgPy's noise comes from numpy's global RNG).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

METHOD_PHYSICS = "physics (ProgPy particle filter + simulation to threshold)"
METHOD_LEARNED = "learned model, extrapolation"

#: Particles of the filter, tuned on three simulated pumps: 300 left the wear rates further
#: off, 800 was not reliably better; a 2 s step of 500 costs ~0.3 ms (vectorised).
N_PARTICLES = 500
MAX_PARTICLES = 1000
#: Forward samples per profile (drawn from the particles), default and cap.
N_SAMPLES = 100
MAX_SAMPLES = 300
#: Readings the filter runs over (it starts at the life start): 16.7 h of 5-minute
#: readings, the longest simulated life (16 h). Its cost grows with the life's length (150
#: model steps per reading): ~0.15 s per reading measured on 2 busy cores, so ~30 s here.
MAX_READINGS = 200
#: Simulated hours ahead: three times the longest simulated life left after a first hour.
MAX_SIM_HOURS = 48.0
#: Wall time for one call (filter + both profiles), under the service's 60 s request
#: timeout: a filter past it is a 503; a forward run past it stops, and the samples still
#: alive are censored (reported, with a warning).
TIME_BUDGET_S = 45.0
#: How long a call waits for another one's simulation to finish before a 503 "busy".
LOCK_WAIT_S = 5.0
#: The "current" profile: the median of each setting over the last hour of readings
#: (the duty level holds 1-4 h; a median ignores a ramp in progress).
CURRENT_WINDOW_S = 3600.0

#: Log-uniform prior of the wear rates (ProgPy units) at the life start: a factor 4 either
#: side of the simulated fleet's medians, wider than its spread (x0.5 .. x2).
WEAR_RATE_PRIOR = {"wA": (0.0050 / 4, 0.0050 * 4), "wRadial": (0.60e-10 / 4, 0.60e-10 * 4),
                   "wThrust": (0.30e-10 / 4, 0.30e-10 * 4)}
#: Process noise std per state and second (ProgPy adds dt * N(0, std) each step, so a
#: 5-minute reading's 150 steps of 2 s move a state by ~24 std): about the measurement
#: noise for w / Q / temperatures, ~1.5 % of a rate per reading for the wear rates: the
#: roughening that lets resampled particles keep searching (at 0.5 % they froze where the
#: first, barely informative, readings left them: rates 20-50 % low on three test pumps).
PF_PROCESS_NOISE = {"w": 0.02, "Q": 4e-5, "Tt": 0.01, "Tr": 0.01, "To": 0.01, "A": 1e-5,
                    "rRadial": 1e-10, "rThrust": 1e-10, "QLeak": 0.0, "wA": 3e-6,
                    "wRadial": 3.6e-14, "wThrust": 1.8e-14}
#: The filter's likelihood widens the sensors' noise (features.sources.pump.NOISE_STD) 5x:
#: the loading between two readings is held at the earlier one (the simulator ramps it),
#: and a sharper likelihood collapses the particles onto one wear-rate guess within the
#: warm-up, before the rates show.
LIKELIHOOD_WIDENING = 5.0

_PHYSICS_LOCK = threading.Lock()


class WhatIfError(Exception):
    """Bad input or an impossible question: `field` names what to fix (-> a 4xx)."""

    def __init__(self, status: int, message: str, field: str):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@dataclass
class Outcome:
    """RUL samples under one profile, summarised in the type's RUL unit."""

    profile: dict[str, float]
    rul: float | None
    rul_lower: float | None
    rul_upper: float | None
    p_fail: float
    censored: int
    failure_modes: dict[str, float] = field(default_factory=dict)


# ---- physics: the pump --------------------------------------------------------------
def pump_model(process_noise: dict | float = 0.0):
    """ProgPy's CentrifugalPumpWithWear, as the simulator builds it (wear rates as states)."""
    from progpy.models import CentrifugalPumpWithWear

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "wA, wRadial, and wThrust", UserWarning)
        return CentrifugalPumpWithWear(process_noise=process_noise, measurement_noise=0.0)


def current_life(readings: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """One asset's readings since its last maintenance, in cycle order."""
    from features.transforms import last_renewal

    renewed = last_renewal(readings, events)
    life = readings[readings["cycle"].to_numpy(dtype=float) > renewed.max(initial=0.0)]
    return life.sort_values("cycle").reset_index(drop=True)


def current_profile(life: pd.DataFrame, settings: list[str], period_s: float) -> dict:
    """The asset's recent loading: each setting's median over the last CURRENT_WINDOW_S."""
    last = life.tail(max(1, int(round(CURRENT_WINDOW_S / period_s))))
    return {c: float(last[c].median()) for c in settings}


def estimate_pump_state(life: pd.DataFrame, *, period_s: float, n_particles: int = N_PARTICLES,
                        seed: int = 0, deadline: float | None = None) -> np.ndarray:
    """ProgPy ParticleFilter over one life's readings -> particles of the state now
    (a (12, n) matrix in the model's `states` order). The reading at cycle c is at
    (c - first cycle) * period_s; the loading between two readings is the earlier one's."""
    from progpy.state_estimators import ParticleFilter
    from progpy.uncertain_data import UnweightedSamples

    from features.sources.pump import INTEGRATION_DT_S, NOISE_STD, SENSOR_COLUMNS, SETTING_COLUMNS

    m = pump_model(process_noise=PF_PROCESS_NOISE)
    rng = np.random.default_rng(seed)
    first = life.iloc[0]
    x0 = m.parameters["x0"]
    def measured(s, default):  # an optional temperature may be missing at the start
        return float(first[s]) if np.isfinite(first[s]) else float(default)

    start = {"w": measured("w", x0["w"]), "Q": measured("Qout", 0.0),
             **{s: measured(s, first["Tamb"]) for s in ("Tt", "Tr", "To")},
             "A": x0["A"], "rRadial": x0["rRadial"], "rThrust": x0["rThrust"], "QLeak": 0.0}
    rates = {k: np.exp(rng.uniform(np.log(lo), np.log(hi), n_particles))
             for k, (lo, hi) in WEAR_RATE_PRIOR.items()}
    particles = [m.StateContainer({**start, **{k: float(v[i]) for k, v in rates.items()}})
                 for i in range(n_particles)]
    noise = {k: v * LIKELIHOOD_WIDENING for k, v in NOISE_STD.items()}
    pf = ParticleFilter(m, UnweightedSamples(particles), num_particles=None,
                        measurement_noise=noise, dt=INTEGRATION_DT_S, t0=0.0)
    cycles = life["cycle"].to_numpy(dtype=float)
    t = (cycles - cycles[0]) * period_s
    u = life[SETTING_COLUMNS].to_numpy(dtype=float)
    z = life[SENSOR_COLUMNS].to_numpy(dtype=float)
    state = np.random.get_state()
    try:  # ProgPy's process noise is drawn from numpy's global RNG
        np.random.seed(seed)
        for k in range(1, len(life)):
            if deadline is not None and time.monotonic() > deadline:
                raise WhatIfError(503, "the state estimate ran past the time budget "
                                  f"({TIME_BUDGET_S:.0f} s)", "asset_id")
            good = np.isfinite(z[k])  # an optional temperature that dropped out
            zk = {s: float(z[k, j]) for j, s in enumerate(SENSOR_COLUMNS) if good[j]}
            uk = m.InputContainer(dict(zip(SETTING_COLUMNS, u[k - 1].tolist(), strict=True)))
            pf.parameters["measurement_noise"] = {s: noise[s] for s in zk}
            _estimate_subset(pf, t[k], uk, zk, m)
    finally:
        np.random.set_state(state)
    return np.asarray(pf.particles.matrix, dtype=float)


def _estimate_subset(pf, t: float, u, z: dict, m) -> None:
    """pf.estimate with only the outputs present in z (ProgPy weighs every output it has)."""
    from features.sources.pump import INTEGRATION_DT_S

    if len(z) == len(m.outputs):
        pf.estimate(t, u, m.OutputContainer(z), dt=INTEGRATION_DT_S)
        return
    full_output = pf._measure
    pf._measure = lambda x: {k: v for k, v in full_output(x).items() if k in z}
    try:
        pf.estimate(t, u, z, dt=INTEGRATION_DT_S)
    finally:
        pf._measure = full_output


def simulate_to_failure(states: np.ndarray, loading: Callable[[float], dict], *,
                        max_s: float, deadline: float | None = None,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Every column of `states` forward under `loading(t)` (t: seconds from now) until one of
    ProgPy's thresholds is met -> (time to failure in s, inf if alive at max_s or at the
    deadline; index into FAILURE_MODES, -1 if alive). ProgPy's own next_state /
    threshold_met, vectorised over the samples, at the simulator's integration step."""
    from features.sources.pump import FAILURE_MODES, INTEGRATION_DT_S

    m = pump_model()
    n = states.shape[1]
    ttf, mode = np.full(n, np.inf), np.full(n, -1)
    alive = np.arange(n)
    x = m.StateContainer(states.copy())
    u_of: dict[tuple, Any] = {}
    t, step = 0.0, 0
    while len(alive) and t < max_s:
        if deadline is not None and step % 100 == 0 and time.monotonic() > deadline:
            break
        values = loading(t)
        key = tuple(values.values())
        if key not in u_of:  # one InputContainer per distinct loading, not one per step
            u_of[key] = m.InputContainer(values)
        u = u_of[key]
        x = m.apply_limits(m.next_state(x, u, INTEGRATION_DT_S))
        t += INTEGRATION_DT_S
        step += 1
        met = m.threshold_met(x)
        done = np.zeros(len(alive), dtype=bool)
        for j, event in enumerate(FAILURE_MODES):
            hit = np.atleast_1d(np.asarray(met[event], dtype=bool)) & ~done
            mode[alive[hit]] = j
            done |= hit
        if done.any():
            ttf[alive[done]] = t
            alive = alive[~done]
            x = m.StateContainer(x.matrix[:, ~done])
    return ttf, mode


def constant_loading(profile: dict[str, float]) -> Callable[[float], dict]:
    """ProgPy inputs held at `profile` (every one of the model's inputs)."""
    from features.sources.pump import SETTING_COLUMNS

    values = {c: float(profile[c]) for c in SETTING_COLUMNS}
    return lambda _t: values


def summarise(ttf_units: np.ndarray, mode: np.ndarray, profile: dict, *, horizon: float,
              level: float) -> Outcome:
    """Samples (RUL units; inf = censored) -> median, central `level` interval, p_fail
    within horizon, share of samples each failure mode ends. A statistic that falls on a
    censored sample is None (the RUL is beyond the simulated time)."""
    from features.sources.pump import FAILURE_MODES

    def q(p):
        v = float(np.quantile(ttf_units, p, method="inverted_cdf"))
        return v if np.isfinite(v) else None

    failed = mode >= 0
    shares = {e: float(np.mean(mode == j)) for j, e in enumerate(FAILURE_MODES)
              if np.any(mode == j)}
    return Outcome(profile=profile, rul=q(0.5), rul_lower=q((1 - level) / 2),
                   rul_upper=q((1 + level) / 2), p_fail=float(np.mean(ttf_units <= horizon)),
                   censored=int((~failed).sum()), failure_modes=shares)


def whatif_pump(life: pd.DataFrame, requested: dict[str, float], *, setting_names: list[str],
                period_s: float, seconds_per_unit: float, horizon: float, level: float,
                n_samples: int = N_SAMPLES, seed: int = 0) -> dict:
    """The physics answer for one pump life: current vs requested profile (see module doc).

    `requested` overrides the current profile's values field by field; when V is set and
    wsync is not, wsync follows V at the asset's current wsync / V ratio (a drive that keeps
    volts per hertz, as the simulated duty profile does).
    """
    if len(life) < 2:
        raise WhatIfError(422, "the physics estimate needs at least two readings of the "
                          "asset's current life", "asset_id")
    if len(life) > MAX_READINGS:
        raise WhatIfError(422, f"the asset's current life has {len(life)} readings; the "
                          f"physics estimate runs from the life start over at most "
                          f"{MAX_READINGS}", "asset_id")
    if not _PHYSICS_LOCK.acquire(timeout=LOCK_WAIT_S):
        raise WhatIfError(503, "another what-if simulation is running: retry later", "asset_id")
    try:
        started = time.monotonic()
        deadline = started + TIME_BUDGET_S
        current = current_profile(life, setting_names, period_s)
        future = {**current, **requested}
        if "V" in requested and "wsync" not in requested and current.get("V"):
            future["wsync"] = current["wsync"] / current["V"] * requested["V"]
        try:
            particles = estimate_pump_state(life, period_s=period_s, n_particles=N_PARTICLES,
                                            seed=seed, deadline=deadline)
        except (ValueError, FloatingPointError, ZeroDivisionError) as exc:
            raise WhatIfError(422, f"the state estimate failed on this asset's readings: "
                              f"{exc}", "asset_id") from exc
        estimated_s = time.monotonic() - started
        pick = np.random.default_rng(seed).choice(particles.shape[1], n_samples, replace=True)
        states = particles[:, pick]
        max_s = MAX_SIM_HOURS * 3600.0
        outcomes = {}
        for name, profile in (("current", current), ("requested", future)):
            ttf, mode = simulate_to_failure(states, constant_loading(profile), max_s=max_s,
                                            deadline=deadline)
            outcomes[name] = summarise(ttf / seconds_per_unit, mode, profile,
                                       horizon=horizon, level=level)
        warnings_ = []
        if time.monotonic() > deadline:
            warnings_.append(f"the simulation stopped at the time budget ({TIME_BUDGET_S:.0f} "
                             "s): samples still running then are counted as censored")
        return {"method": METHOD_PHYSICS, "current": outcomes["current"],
                "requested": outcomes["requested"], "n_samples": n_samples,
                "readings_used": len(life), "simulated_hours_max": max_s / 3600.0,
                "elapsed_s": time.monotonic() - started, "estimate_s": estimated_s,
                "state_estimate": _state_summary(particles), "warnings": warnings_}
    finally:
        _PHYSICS_LOCK.release()


def _state_summary(particles: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and std of the wear states and rates in the particles (ProgPy units)."""
    from progpy.models import CentrifugalPumpWithWear

    m_states = CentrifugalPumpWithWear.states
    keep = ("A", "rRadial", "rThrust", "wA", "wRadial", "wThrust")
    return {s: {"mean": float(particles[i].mean()), "std": float(particles[i].std())}
            for i, s in enumerate(m_states) if s in keep}


# ---- the request: validation, dispatch, the learned path ------------------------------
#: Asset types answered by physics: type name -> the simulator whose model they follow.
PHYSICS_TYPES = ("pump",)


def check_profile(profile: dict[str, float], asset_type) -> None:
    """Every field a declared setting of the type, within its declared range (400 naming
    `profile.<field>` otherwise)."""
    declared = {c.name: c for c in asset_type.settings}
    for name, value in profile.items():
        if name not in declared:
            raise WhatIfError(400, f"profile.{name}: not an operating setting of asset type "
                              f"{asset_type.name!r} (settings: {', '.join(declared)})",
                              f"profile.{name}")
        channel = declared[name]
        lo, hi = getattr(channel, "min", None), getattr(channel, "max", None)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise WhatIfError(400, f"profile.{name}: {value:g} is outside the declared range "
                              f"[{lo:g}, {hi:g}] {channel.unit}", f"profile.{name}")


def answer_whatif(request, *, settings, type_of: Callable[[list[str]], dict[str, str]],
                  lanes: dict) -> dict:
    """The whole answer of POST /whatif (and `twinops whatif`), as WhatIfResponse fields.

    `type_of(ids)` -> {id: type} (the asset registry); `lanes`: the served champions
    (serving.predict.Lane), needed by the learned path only. Raises WhatIfError.
    """
    asset = request.asset_id
    kind = type_of([asset]).get(asset)
    if kind is None:
        raise WhatIfError(404, f"unknown asset {asset!r}: not in the asset registry",
                          "asset_id")
    typed = settings.for_type(kind)
    check_profile(request.profile, typed.type)
    horizon = float(request.horizon or typed.horizon)
    level = float(settings.training.interval_level)
    head = {"asset_id": asset, "asset_type": kind, "rul_unit": typed.type.rul_unit,
            "horizon": horizon}
    if kind in PHYSICS_TYPES:
        from features.datastore import load_events, load_readings

        readings = load_readings(typed)
        readings = readings[readings["asset_id"].astype(str) == asset]
        events = load_events(typed)
        events = events[events["asset_id"].astype(str) == asset]
        if not len(readings):
            raise WhatIfError(404, f"asset {asset!r} has no stored readings", "asset_id")
        answer = whatif_pump(current_life(readings, events), dict(request.profile),
                             setting_names=typed.type.setting_columns,
                             period_s=float(typed.type.sampling_period_s),
                             seconds_per_unit=float(typed.type.seconds_per_rul_unit),
                             horizon=horizon, level=level,
                             n_samples=request.n_samples or N_SAMPLES)
        details = {k: answer[k] for k in ("n_samples", "readings_used", "simulated_hours_max",
                                          "elapsed_s", "estimate_s", "state_estimate")}
        return {**head, "method": answer["method"], "interval_level": level,
                "current": _scenario(answer["current"]),
                "requested": _scenario(answer["requested"]),
                "warnings": answer["warnings"], "details": details}
    lane = lanes.get(kind)
    if lane is None:
        raise WhatIfError(503, f"no model of asset type {kind!r} is being served", "asset_id")
    return {**head, **whatif_learned(lane, asset, dict(request.profile), horizon)}


def _scenario(outcome: Outcome) -> dict:
    return {"profile": outcome.profile, "rul": outcome.rul, "rul_lower": outcome.rul_lower,
            "rul_upper": outcome.rul_upper, "p_fail": outcome.p_fail,
            "censored": outcome.censored, "failure_modes": outcome.failure_modes}


def training_range(predictor, column: str, k: float = 3.0) -> tuple[float, float] | None:
    """What the model saw of a feature in training: its scaler mean +- k std (the spec
    keeps no min / max; training floors a constant feature's std at 1, so a setting held
    constant in training reads as mean +- 3)."""
    spec = getattr(predictor, "spec", None)
    if spec is None or column not in spec.feature_columns:
        return None
    j = spec.feature_columns.index(column)
    mean, std = float(spec.scaler_mean[j]), float(spec.scaler_std[j])
    return mean - k * std, mean + k * std


def whatif_learned(lane, asset: str, requested: dict[str, float], horizon: float) -> dict:
    """The champion on the asset's online features, then on the same features with the
    setting features replaced: the model's response to the settings alone. Its sensor
    features stay those measured under the current settings (recomputing them would need
    a model of how the sensors respond to the settings: the learned model has none), so
    this is an extrapolation, labelled so, with a warning per setting outside training."""
    from features.online import OnlineRows
    from serving.predict import _run_model, rows_from_frame

    fetched = lane.fetch([asset])
    rows = fetched if isinstance(fetched, OnlineRows) else rows_from_frame(fetched, [asset])
    if not bool(rows.found[0]):
        raise WhatIfError(404, f"asset {asset!r} has no online features", "asset_id")
    model = lane.holder.current
    current = {c: float(rows.values[0, rows.columns.index(c)]) for c in requested
               if c in rows.columns}
    changed = rows.values.copy()
    for c, v in requested.items():
        if c in rows.columns:
            changed[0, rows.columns.index(c)] = v
    what_if = OnlineRows(rows.asset_ids, rows.found, rows.feature_ts, changed, rows.columns)
    pick = np.array([0])
    out = {name: _run_model(model, r, pick, horizon) for name, r in
           (("current", rows), ("requested", what_if))}
    out_of_range, notes = [], []
    for c, v in requested.items():
        span = training_range(model.predictor, c)
        if span is not None and not span[0] - 1e-9 <= v <= span[1] + 1e-9:
            out_of_range.append(c)
            notes.append(f"{c} = {v:g} is outside the range the model was trained on "
                         f"({span[0]:g} to {span[1]:g}): the answer is an extrapolation "
                         "beyond its data")
    notes.insert(0, "learned model: only the setting features were changed, the sensor "
                 "features are those measured under the current settings")
    level = float(getattr(model.predictor, "interval_level", float("nan")))

    def scenario(name, profile):
        o = out[name]
        return {"profile": profile, **{k: float(np.asarray(o[k])[0]) for k in
                                       ("rul", "rul_lower", "rul_upper", "p_fail")}}

    return {"method": METHOD_LEARNED, "interval_level": level,
            "current": scenario("current", current),
            "requested": scenario("requested", {**current, **requested}),
            "out_of_range": out_of_range, "warnings": notes,
            "details": {"model_name": model.name, "model_version": model.version}}
