"""Virtual run-to-failure assets from the damage law's time-scaling symmetry.

    labelled asset u: raw readings x_u(c), c = 1..n (cycles up to its last labelled one),
                      failure cycle T_u (= last cycle + its RUL there)
        │ per sensor and setting: trend m_u(c) (Savitzky-Golay) + residual row e_u(c)
        │ for each pace k (virtual asset wears k times as fast as u)
        ▼
    virtual asset "u*k": cycles c' = ceil(c_1/k) .. floor(c_n/k)
        readings  x'(c') = m_u(k c') + e_u(c*)   (c* drawn at random among u's cycles)
        RUL       r'(c') = T_u / k - c'
        ▼
    features.transforms.window_features (THE window transform) ─► feature rows + labels
        + {virtual id: (source u, donor v: the asset whose lifetime set the pace)}

Why this is physics: the C-MAPSS generator (Saxena et al. 2008) wears every unit along
the same exponential family, D(t) = exp(a (t - t_fail)) with a unit-specific rate a, and
declares failure at one damage threshold. The family is closed under scaling time: a unit
that runs the same damage path k times as fast is another admissible unit, with rate k a,
the same state at failure and lifetime T/k. Its wear at RUL r/k is the real unit's at RUL r.
A fleet of 20 failures shows 20 rates; the law says which other rates are possible and what
they look like, so the network is told that a sensor level alone does not fix the RUL: the
same level is further from failure on a slow unit than on a fast one.

Why the raw readings, not the features: the generator's readings are a wear path plus
measurement noise. Warping the path and drawing fresh noise gives a virtual asset whose
windows span the right number of cycles and whose readings are as noisy as a real one's;
the features then come from the one window transform, like every real row's. Warping the
feature rows instead would keep each window's span in real cycles, and interpolating them
would average the noise away (docs/experiments.md compares the variants).
A residual row is drawn whole (every sensor and setting of one real reading), so a virtual
reading is a real reading of u moved along u's trend from its own age to the virtual one:
correlations between sensors and the operating settings of that reading are kept.

Approximations, said plainly: the trend is a local quadratic over TREND_READINGS readings,
so it lags a little where wear accelerates, and noise is treated as independent from one
reading to the next (true of the C-MAPSS generator and of the project's simulator).

Paces come from the fleet (`fleet_paces`): lifetime ratios T_u / T_v. On FD001 (lifetimes
128 to 362 cycles) most lie within 0.64 to 1.49, and up to 362/128 = 2.8 can be drawn.
Only donors on u's own degradation path (`same_wear_path`: the sensors move the same way)
lend their pace (an asset without a signature, e.g. a gap in its readings, lends to none):
the symmetry holds per fault mode, not across modes, and a fleet with two
modes of different lifetimes otherwise gets virtual units of neither.

Folds (training.datamodule): a copy of u at v's pace is u's path and v's lifetime, so it
carries labels of both. The ensemble members that hold out u's fold or v's fold never train
on it, and virtual assets never enter validation or calibration: only real assets are
scored. Why both folds: masking u's fold alone would put a held-out unit's exact lifetime
in the training set of the members that predict it (through the copies of other units run
at its pace), and the out-of-fold RMSE would then flatter the model more with every copy
added (docs/experiments.md#virtual-assets-how-they-were-chosen).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.contract import ASSET_ID, CYCLE, TIMESTAMP
from features.labels import LABEL_COLUMN as RUL

#: Separates the source asset id from the pace in a virtual asset's id.
VIRTUAL_MARK = "*"
#: Readings in the Savitzky-Golay window of the wear trend (odd). Not tuned: about the
#: feature window, long enough to average the noise, short next to a lifetime (128+ cycles).
TREND_READINGS = 31
#: Degree of the local polynomial of the trend: a quadratic follows the knee of the
#: exponential wear that a moving average (degree 0) would flatten.
TREND_DEGREE = 2


def _run_to_failure(frame: pd.DataFrame):
    """(asset id, its rows by cycle) for every asset labelled on every row (>= 2 rows).

    Assets with an unlabelled row (in service) are left out: their wear path is not known
    to its end, so neither their lifetime nor a copy of their path exists.
    """
    for asset, g in frame.groupby(frame[ASSET_ID].astype(str), sort=True):
        if len(g) >= 2 and np.isfinite(g[RUL].to_numpy(dtype=np.float64)).all():
            yield asset, g.sort_values(CYCLE, kind="stable")


def lifetimes(frame: pd.DataFrame, per_cycle: float = 1.0) -> dict[str, float]:
    """Failure cycle (cycle + RUL at the last reading, the RUL in cycles) of every
    run-to-failure asset; `per_cycle`: RUL units per cycle (features.asset_types)."""
    return {
        asset: float(g[CYCLE].iloc[-1] + g[RUL].iloc[-1] / per_cycle)
        for asset, g in _run_to_failure(frame)
    }


def fleet_paces(
    frame: pd.DataFrame, copies: int, seed: int, max_assets: int | None = None,
    per_cycle: float = 1.0, same_path: Mapping[str, set[str]] | None = None,
) -> dict[str, list[tuple[float, str]]]:
    """Per labelled asset u, `copies` (pace T_u / T_v, donor v): u's wear path run at the
    pace of another asset v of the fleet, drawn (seeded) among the distinct lifetimes other
    than u's (the first asset by id with that lifetime is its donor). With `max_assets`,
    at most max_assets // (run-to-failure assets) copies per asset, so that no more than
    `max_assets` virtual assets are made in all.

    Why paces of the fleet rather than fixed factors: they are the rates this fleet has
    shown, so the virtual assets stay inside its spread of lifetimes (FD001: 128 to 362
    cycles) whatever the fleet, simulated or real, and no factor is a tuned constant.
    Why the donor is kept: the copy fails at T_v exactly, so it carries v's label, and the
    ensemble members that hold v out must not train on it (training.datamodule).
    `same_path` (`same_wear_path`): per asset, the assets whose lifetimes it may take; the
    symmetry holds along one degradation path, so a unit of one fault mode does not take
    the pace of a unit of another (None: every asset of the fleet).
    """
    life = lifetimes(frame, per_cycle)
    if max_assets is not None:
        copies = min(copies, max_assets // max(1, len(life)))
    rng = np.random.default_rng(seed)
    out = {}
    for u in sorted(life):
        donor_of: dict[float, str] = {}
        for asset in sorted(life):
            if same_path is None or asset in same_path.get(u, ()):
                donor_of.setdefault(life[asset], asset)
        paces = sorted(t for t in donor_of if t != life[u])  # distinct, not u's own
        pick = rng.choice(len(paces), size=min(copies, len(paces)), replace=False)
        out[u] = [(life[u] / paces[i], donor_of[paces[i]]) for i in sorted(pick)]
    return out


#: A group of run-to-failure assets is split in two degradation paths when the mean cosine
#: between the wear signatures (`same_wear_path`) of the two halves is below this. Measured:
#: the project's simulator with two fault modes (HPC, fan) splits at -0.02, one mode's units
#: at 0.90, and C-MAPSS FD001 (one fault mode; its core speeds trend up on some units and
#: down on others) at 0.42: it stays one path.
SPLIT_MAX_BETWEEN_COSINE = 0.2


def _wear_signature(values: np.ndarray) -> np.ndarray | None:
    """Unit vector of the wear trend's change from first reading to failure, per sensor in
    units of that sensor's noise; None for a path without change or a gap."""
    if len(values) <= TREND_DEGREE or not np.isfinite(values).all():
        return None
    trend, residuals = wear_trend(values)
    noise = residuals.std(axis=0)
    moving = noise > 1e-9
    change = np.where(moving, (trend[-1] - trend[0]) / np.where(moving, noise, 1.0), 0.0)
    norm = float(np.linalg.norm(change))
    return change / norm if norm > 0 else None


def _split_paths(ids: list[str], sig: np.ndarray) -> list[list[str]]:
    """Groups of `ids` by degradation path: spherical 2-means from the two most dissimilar
    signatures, split again while the halves point apart (SPLIT_MAX_BETWEEN_COSINE).
    Written out rather than scikit-learn's KMeans: deterministic from the data (no random
    restarts), on cosines, and a dozen lines."""
    if len(ids) < 4:
        return [ids]
    cos = sig @ sig.T
    i, j = np.unravel_index(np.argmin(cos), cos.shape)
    side = cos[:, j] > cos[:, i]
    for _ in range(50):
        if side.all() or not side.any():
            return [ids]
        new = sig @ sig[side].mean(axis=0) > sig @ sig[~side].mean(axis=0)
        if (new == side).all():
            break
        side = new
    if side.all() or not side.any() or cos[np.ix_(side, ~side)].mean() >= (
            SPLIT_MAX_BETWEEN_COSINE):
        return [ids]
    return [g for part in (side, ~side)
            for g in _split_paths([a for a, k in zip(ids, part, strict=True) if k], sig[part])]


def same_wear_path(frame: pd.DataFrame, readings: pd.DataFrame, asset_type
                   ) -> dict[str, set[str]]:
    """Per run-to-failure asset, the assets on its degradation path (itself included).

    The wear signature is the direction in which the fault moves the sensors: the change of
    the wear trend from the first reading to the failure, per sensor in units of its noise,
    as a unit vector. The fleet is split into paths while two halves of it point apart
    (`_split_paths`). Why: the time-scaling symmetry says a unit of one fault mode run at
    another pace is another unit *of that mode*; a fleet with two fault modes (C-MAPSS
    FD003: HPC and fan) has a lifetime distribution per mode, and a copy of an HPC unit at
    a fan unit's pace exists in neither. Fault modes are rarely labelled, so they are told
    apart by what they do to the sensors. Where the type declares regimes the sensors are
    normalised per regime first (features.regimes): a raw level there is the regime's.
    """
    if getattr(asset_type, "regimes", None) is not None:
        from features.regimes import normalise

        readings = normalise(readings, asset_type)
    by_asset = {str(a): g for a, g in readings.groupby(readings[ASSET_ID].astype(str))}
    signature: dict[str, np.ndarray] = {}
    for asset, g in _run_to_failure(frame):
        if asset not in by_asset:
            continue
        own = by_asset[asset].sort_values(CYCLE, kind="stable")
        own = own[own[CYCLE] <= g[CYCLE].iloc[-1]]
        s = _wear_signature(own[asset_type.sensor_columns].to_numpy(dtype=np.float64))
        if s is not None:
            signature[asset] = s
    ids = sorted(signature)
    if not ids:
        return {}
    groups = _split_paths(ids, np.array([signature[a] for a in ids]))
    return {a: set(g) for g in groups for a in g}


def wear_trend(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(trend, residuals) of one asset's readings (n, columns), in cycle order.

    Residuals are scaled by 1 / sqrt(1 - h), h the filter's weight on the reading itself,
    because the trend absorbs that share of each reading's noise (a residual is otherwise
    less noisy than the reading it comes from).
    """
    from scipy.signal import savgol_coeffs, savgol_filter

    n = len(values)
    width = min(TREND_READINGS, n if n % 2 else n - 1)
    if width <= TREND_DEGREE:
        raise ValueError(f"a wear trend needs more than {TREND_DEGREE + 1} readings, got {n}")
    trend = savgol_filter(values, width, TREND_DEGREE, axis=0, mode="interp")
    self_weight = savgol_coeffs(width, TREND_DEGREE)[width // 2]
    return trend, (values - trend) / np.sqrt(1.0 - self_weight)


def time_scaled_readings(
    readings: pd.DataFrame, trend: np.ndarray, residuals: np.ndarray, k: float, rng,
    columns: list[str],
) -> pd.DataFrame:
    """Readings of one virtual asset: `readings` (one asset, by cycle) worn k times as fast;
    `columns` are the measurement columns of `trend` and `residuals`.

    Its cycles are c' = ceil(c_1/k) .. floor(c_n/k); at c' the reading is the trend at the
    real cycle k c' plus a residual row drawn (with replacement) from the asset's own.
    """
    cycle = readings[CYCLE].to_numpy(dtype=np.float64)
    virtual_cycles = np.arange(np.ceil(cycle[0] / k), np.floor(cycle[-1] / k) + 1.0)
    at = virtual_cycles * k
    level = np.column_stack([np.interp(at, cycle, trend[:, j]) for j in range(trend.shape[1])])
    noise = residuals[rng.integers(0, len(residuals), len(virtual_cycles))]
    out = pd.DataFrame(level + noise, columns=columns)
    stamps = pd.to_datetime(readings[TIMESTAMP], utc=True)
    step = stamps.diff().median() if len(stamps) > 1 else pd.Timedelta(hours=1)
    out.insert(0, CYCLE, virtual_cycles.astype(np.int64))
    out.insert(0, TIMESTAMP, stamps.iloc[0] + (virtual_cycles - virtual_cycles[0]) * step)
    return out


def virtual_assets(
    frame: pd.DataFrame,
    readings: pd.DataFrame,
    feature_columns: list[str],
    paces: Mapping[str, Sequence[tuple[float, str]]],
    asset_type,
    seed: int,
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """Feature rows of the virtual copies of the run-to-failure assets of `frame`, one per
    (pace, donor) in `paces[asset]` (`fleet_paces`), built from their raw `readings`.

    Returns (rows with asset_id, cycle, rul and `feature_columns`,
    {virtual id: (source asset, donor asset)}). In-service assets, assets not in `paces`
    and assets whose readings give no trend (fewer than 3, or a non-finite value) are not
    copied; a pace of 1 is the asset itself, and a repeated pace makes one copy.
    The features are `features.transforms.window_features` of the virtual readings for
    `asset_type` (features.asset_types), so `feature_columns` must be that transform's.
    """
    from features.transforms import window_features

    if any(k <= 0 for ks in paces.values() for k, _ in ks):
        raise ValueError(f"time-scaling factors must be > 0, got {dict(paces)}")
    measurements = asset_type.measurement_columns
    unknown = sorted(set(feature_columns) - set(asset_type.feature_columns))
    if unknown:
        raise ValueError(
            f"virtual assets have the window transform's features only, not {unknown[:5]}: "
            "set training.time_scale_copies=0 for other feature frames"
        )
    by_asset = {str(a): g for a, g in readings.groupby(readings[ASSET_ID].astype(str))}
    parts: list[pd.DataFrame] = []
    failure: dict[str, float] = {}  # virtual id -> its failure cycle T_u / k
    parents: dict[str, tuple[str, str]] = {}
    for index, (asset, g) in enumerate(_run_to_failure(frame)):
        donors = {k: d for k, d in paces.get(asset, ()) if k != 1.0}
        if not donors:
            continue
        if asset not in by_asset:
            raise ValueError(f"no raw readings of run-to-failure asset {asset!r}")
        own = by_asset[asset].sort_values(CYCLE, kind="stable")
        own = own[own[CYCLE] <= g[CYCLE].iloc[-1]]  # its life up to the failure
        values = own[measurements].to_numpy(dtype=np.float64)
        if len(own) <= TREND_DEGREE or not np.isfinite(values).all():
            continue  # no trend to warp (too short, or a gap in a reading)
        trend, residuals = wear_trend(values)
        rng = np.random.default_rng([seed, index])
        life = float(g[CYCLE].iloc[-1] + g[RUL].iloc[-1] / asset_type.rul_per_cycle)
        for k in sorted(donors):
            part = time_scaled_readings(own, trend, residuals, k, rng, measurements)
            if len(part) < 2:
                continue
            vid = f"{asset}{VIRTUAL_MARK}{k:.4g}"
            part.insert(0, ASSET_ID, vid)
            parts.append(part)
            failure[vid], parents[vid] = life / k, (asset, donors[k])
    columns = [ASSET_ID, CYCLE, RUL, *(c for c in feature_columns if c != CYCLE)]
    if not parts:
        return frame.iloc[0:0].reindex(columns=columns), {}
    rows = window_features(pd.concat(parts, ignore_index=True), asset_type)
    cycles_left = rows[ASSET_ID].map(failure).to_numpy(np.float64) - rows[CYCLE].to_numpy()
    rows[RUL] = cycles_left * asset_type.rul_per_cycle
    return rows[columns], parents
