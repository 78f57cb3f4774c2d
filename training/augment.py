"""Virtual run-to-failure assets from the damage law's time-scaling symmetry.

    labelled asset u: features x_u(c), uncapped RUL r_u(c), cycles c = c_1..c_n
        │ for each factor k (virtual asset wears k times as fast as u)
        ▼
    virtual asset "u*k": cycles c' = ceil(c_1/k) .. floor(c_n/k), read u at c = k c'
        features  x'(c') = x_u(k c')          (linear interpolation between u's readings)
        slopes    s'(c') = k s_u(k c')        (d/dc' = k d/dc)
        cycle     c'                          RUL r'(c') = r_u(k c') / k
        ▼
    frame rows for the virtual assets + {virtual id: source id}

Why this is physics: the C-MAPSS generator (Saxena et al. 2008) wears every unit along
the same exponential family, D(t) = exp(a (t - t_fail)) with a unit-specific rate a, and
declares failure at one damage threshold. The family is closed under scaling time: a unit
that runs the same damage path k times as fast is another admissible unit, with rate k a,
the same state at failure and lifetime T/k. Its readings at RUL r/k are the real unit's
at RUL r, and every rate of change is k times the real one. A fleet of 20 failures shows
20 rates; the law says which other rates are possible and what they look like, so the
network is told that a sensor level alone does not fix the RUL: the same level is further
from failure on a slow unit than on a fast one.

Approximations, said plainly: window means keep their span in real readings (a virtual
30-reading window covers 30 k real cycles), and interpolating between readings averages
the noise of two readings at fractional positions. Both grow with |ln k|: the paces of
`fleet_paces` are lifetime ratios of the fleet: on FD001 (100 units, seed 0) 80% lie
within 0.64 to 1.49 and the drawn extremes were 0.48 and 2.0 (up to 362/128 = 2.8 can be
drawn). Warping the raw readings before the window transform would remove both; it needs
the raw histories in training.

Virtual assets inherit their source's cross-fitting fold (training.datamodule), so a
member that holds an asset out also holds out every copy of it, and they never enter
validation or calibration: only real assets are scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from features.contract import ASSET_ID, CYCLE
from features.labels import LABEL_COLUMN as RUL

#: Separates the source asset id from the factor in a virtual asset's id.
VIRTUAL_MARK = "*"


def slope_columns(columns: list[str]) -> list[str]:
    """The rate-of-change features among `columns` (they scale with the wear rate)."""
    from features.transforms import LONG_SLOPE_COLUMNS, SHORT_SLOPE_COLUMNS, SLOPE_COLUMNS

    rates = {*SLOPE_COLUMNS, *LONG_SLOPE_COLUMNS, *SHORT_SLOPE_COLUMNS}
    return [c for c in columns if c in rates]


def _run_to_failure(frame: pd.DataFrame):
    """(asset id, its rows by cycle) for every asset labelled on every row (>= 2 rows).

    Assets with an unlabelled row (in service) are left out: their wear path is not known
    to its end, so neither their lifetime nor a copy of their path exists.
    """
    for asset, g in frame.groupby(frame[ASSET_ID].astype(str), sort=True):
        if len(g) >= 2 and np.isfinite(g[RUL].to_numpy(dtype=np.float64)).all():
            yield asset, g.sort_values(CYCLE, kind="stable")


def lifetimes(frame: pd.DataFrame) -> dict[str, float]:
    """Failure cycle (cycle + RUL at the last reading) of every run-to-failure asset."""
    return {
        asset: float(g[CYCLE].iloc[-1] + g[RUL].iloc[-1]) for asset, g in _run_to_failure(frame)
    }


def fleet_paces(frame: pd.DataFrame, copies: int, seed: int) -> dict[str, list[float]]:
    """Per labelled asset u, `copies` factors T_u / T_v: u's wear path run at the pace of
    other assets v of the fleet, drawn (seeded) among the distinct lifetimes other than u's.

    Why paces of the fleet rather than fixed factors: they are the rates this fleet has
    shown, so the virtual assets stay inside its spread of lifetimes (FD001: 128 to 362
    cycles) whatever the fleet, simulated or real, and no factor is a tuned constant.
    """
    life = lifetimes(frame)
    rng = np.random.default_rng(seed)
    out = {}
    for u in sorted(life):
        paces = sorted({t for t in life.values() if t != life[u]})  # distinct, not u's own
        pick = rng.choice(len(paces), size=min(copies, len(paces)), replace=False)
        out[u] = [life[u] / paces[i] for i in sorted(pick)]
    return out


def time_scaled_assets(
    frame: pd.DataFrame, feature_columns: list[str], factors: Mapping[str, Sequence[float]]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Virtual copies of the fully labelled assets of `frame`, one per factor in
    `factors[asset]` (e.g. `fleet_paces`); assets not in `factors` are not copied.

    Returns (rows of the virtual assets with asset_id, cycle, rul and `feature_columns`,
    {virtual asset id: source asset id}). In-service assets are never copied
    (`_run_to_failure`).
    """
    if any(k <= 0 for ks in factors.values() for k in ks):
        raise ValueError(f"time-scaling factors must be > 0, got {dict(factors)}")
    rates = set(slope_columns(feature_columns))
    values = [c for c in feature_columns if c != CYCLE]
    parts: list[pd.DataFrame] = []
    sources: dict[str, str] = {}
    for asset, g in _run_to_failure(frame):
        rul = g[RUL].to_numpy(dtype=np.float64)
        cycle = g[CYCLE].to_numpy(dtype=np.float64)
        x = g[values].to_numpy(dtype=np.float64)
        for k in sorted(set(factors.get(asset, ()))):  # equal paces make one copy
            if k == 1.0:
                continue
            virtual_cycles = np.arange(np.ceil(cycle[0] / k), np.floor(cycle[-1] / k) + 1.0)
            if virtual_cycles.size < 2:
                continue
            at = virtual_cycles * k
            cols = {
                c: np.interp(at, cycle, x[:, j]) * (k if c in rates else 1.0)
                for j, c in enumerate(values)
            }
            vid = f"{asset}{VIRTUAL_MARK}{k:.4g}"
            sources[vid] = asset
            part = pd.DataFrame(cols)
            part.insert(0, ASSET_ID, vid)
            part[CYCLE] = virtual_cycles.astype(np.int64)
            part[RUL] = np.interp(at, cycle, rul) / k
            parts.append(part)
    if not parts:
        return frame.iloc[0:0][[ASSET_ID, CYCLE, RUL, *values]].copy(), {}
    return pd.concat(parts, ignore_index=True), sources
