"""THE window transform — one implementation for training (offline) and serving (online).

    readings (valid, any order) ─► sort by asset, timestamp, cycle
        ─► for each row: that asset's trailing `window` rows (fewer at the start)
        ─► per sensor: mean, least-squares slope vs cycle, mean minus the asset's start;
            settings: current value
        ─► [asset_id, timestamp, cycle, *feature_columns(type)] (window_features)
        ─► last row per asset, from its first and last readings  (latest_window_features)

Why one implementation: training/serving skew is the classic silent failure of
RUL systems. Offline, `window_features` runs over full histories and the rows go
to Feast's offline store; online, `latest_window_features` runs over only the
last `window` readings of an asset and is pushed to the online store. The two
must agree bit for bit, so the computation is written on the explicit trailing
window: row i gathers the values at offsets i-w+1 .. i (masked where they belong
to another asset or do not exist) and accumulates them oldest-to-newest with
elementwise adds. Each output therefore depends only on the values inside its
window, in a fixed order — no cumulative sums whose rounding would depend on how
much history came before. (pandas' rolling().mean() uses running sums, whose
last bits do depend on the history length, which is why it is not used here.)

Features follow from the asset type (features.asset_types): 7 per sensor, one per setting,
and the age — static per type, so its Feast schema and the model's input never move (151
for the 21 sensors and 3 settings of the turbofan). At three time scales — the type's
`window` (30 readings), a short one (`window` // SHORT_WINDOW_DIVISOR, 10) and a long one
(LONG_WINDOW_FACTOR x `window`, 90) — and against the asset's own start:
  <sensor>_mean        mean over the window
  <sensor>_slope       least-squares slope per cycle over the window; 0 for one point
  <sensor>_mean_short  mean over the short window
  <sensor>_slope_short slope over the short window
  <sensor>_mean_long   mean over the long window
  <sensor>_slope_long  slope over the long window
  <sensor>_vs_start    window mean minus the mean of the asset's first START_READINGS (50)
                       readings (all of them while it has fewer)
  <setting>            current operating settings
  age                  cycles since the start of the asset's current life (sampling periods
                       for a timestamp type); `cycle` stays the reading's key
Maintenance renews life: with the asset's events, the readings after a maintenance are a
new life, whose windows, `*_vs_start` baseline and age start again (`last_renewal`).
Missing optional sensors: the type's policy carries a value forward a few readings; a row
whose own value is still missing gets NaN for that sensor's features (the model imputes
them), and every window averages the values it has, so one dropout does not blank the
long window for 90 readings.
Multi-condition fleets (C-MAPSS FD002/FD004): a type that declares `regimes` has its sensors
z-scored by the statistics of each reading's operating regime before the windows
(features.regimes); the statistics are part of the declaration, so this stays a pure
function of (readings, type) and the feature names do not change.
Why three scales: degradation is slow next to the sensor noise but speeds up near the end
(the exponential wear of the C-MAPSS generator). The long window averages 3x more readings,
so its level and trend are ~sqrt(3) (level) to ~5x (slope) less noisy; the short one lags
the least, which matters where wear accelerates. Each scale was kept because it lowered the
out-of-fold validation RMSE of the RUL model on C-MAPSS FD001, and a longer one did not
(docs/experiments.md).
Why the change since the asset's start: every asset begins life with its own manufacturing
variation and initial wear (C-MAPSS documents it for every engine: Saxena et al., "Damage
propagation modeling for aircraft engine run-to-failure simulation", PHM 2008; the
project's simulator draws a per-asset offset and initial damage). An absolute sensor level
mixes that offset with wear; the difference from the asset's own early readings removes
it, which is how engine trend monitoring reads gas-path sensors (deltas from a per-engine
baseline). START_READINGS weighs a quieter baseline (more readings) against one taken
before wear sets in (fewer readings); 50 did best on the same validation units
(docs/experiments.md).
Constant sensors (e.g. sensor_1 in FD001) give constant features; the trainer's
scaler must tolerate zero variance. Online, the newest reading's features need the asset's
last `tail_length(type)` readings and its first START_READINGS ones
(`feature_history`); whatever lies between can be left out, so serving cost does not grow
with an asset's age.

Speed: O(rows × window × columns) vectorised numpy; 20k rows, window 30 ≈ 0.1 s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_MAINTENANCE, TIMESTAMP
from features.regimes import normalise

if TYPE_CHECKING:  # pragma: no cover
    from features.asset_types import AssetType

#: The long window is this many windows.
LONG_WINDOW_FACTOR = 3
#: The short window is the window divided by this (at least one reading).
SHORT_WINDOW_DIVISOR = 3
#: The first readings of an asset that make its baseline for the `*_vs_start` features.
START_READINGS = 50
#: Per-sensor feature suffixes, in the order of the model's input.
SENSOR_FEATURES = (
    "mean",
    "slope",
    "mean_long",
    "slope_long",
    "mean_short",
    "slope_short",
    "vs_start",
)
#: Feature groups the trainer may leave out, chosen per fleet on out-of-fold validation
#: (training.candidates.feature_candidates), because some features pay only with enough
#: failures to learn from: `*_vs_start` helps a fleet of ~100 run-to-failure assets and hurts
#: one of 20-40 (docs/experiments.md#feature-set-per-fleet). {group: feature suffix}.
OPTIONAL_FEATURE_GROUPS: dict[str, str] = {"vs_start": "vs_start"}
#: The age feature: cycles since the start of the asset's current life (its first reading,
#: or the first after its last maintenance). `cycle` stays the reading's key.
AGE = "age"


def sensor_features(sensors: list[str], suffix: str) -> list[str]:
    return [f"{s}_{suffix}" for s in sensors]


def feature_columns(asset_type: AssetType) -> list[str]:
    """The model's input for an asset type, in order: every sensor's window features, the
    current settings, the age. Static per type: its Feast schema is generated from it."""
    window_columns = [
        c for suffix in SENSOR_FEATURES for c in sensor_features(asset_type.sensor_columns, suffix)
    ]
    return [*window_columns, *asset_type.setting_columns, AGE]


def output_columns(asset_type: AssetType) -> list[str]:
    """Columns of window_features' output: the reading's keys, then the features."""
    return [ASSET_ID, TIMESTAMP, CYCLE, *feature_columns(asset_type)]


def last_renewal(readings: pd.DataFrame, events: pd.DataFrame | None) -> np.ndarray:
    """Per reading, the cycle of its asset's last maintenance before it (0: none).

    A maintenance at cycle m renews the asset after its reading m: readings from m + 1 on
    are a new life, whose windows, `*_vs_start` baseline and age start again.
    """
    out = np.zeros(len(readings))
    if events is None or not len(events):
        return out
    renewals = events[events[EVENT] == EVENT_MAINTENANCE]
    if not len(renewals):
        return out
    by_asset = {
        str(a): np.sort(g[CYCLE].to_numpy(dtype=np.float64))
        for a, g in renewals.groupby(renewals[ASSET_ID].astype(str))
    }
    ids = readings[ASSET_ID].astype(str).to_numpy()
    cycles = readings[CYCLE].to_numpy(dtype=np.float64)
    for asset, marks in by_asset.items():
        rows = np.flatnonzero(ids == asset)
        k = np.searchsorted(marks, cycles[rows], side="left")  # maintenances strictly before
        out[rows] = np.where(k > 0, marks[np.maximum(k - 1, 0)], 0.0)
    return out


def _sorted(readings: pd.DataFrame) -> pd.DataFrame:
    return readings.sort_values([ASSET_ID, TIMESTAMP, CYCLE], kind="mergesort").reset_index(
        drop=True
    )


def short_window(window: int) -> int:
    """Readings in the short-scale window."""
    return max(1, window // SHORT_WINDOW_DIVISOR)


def history_length(window: int) -> int:
    """Readings per asset that the features of its newest reading depend on."""
    return LONG_WINDOW_FACTOR * window


def _start_means(y: np.ndarray, pos: np.ndarray, length: int) -> np.ndarray:
    """Mean of y over the first min(pos[i] + 1, length) rows of row i's asset, over the
    values present (NaN where none is).

    Summed oldest -> newest with elementwise adds, like `_trailing_stats`, so that the value
    depends only on those rows and their order: bit-identical offline and online.
    """
    rows = np.arange(len(pos))
    first = rows - pos
    total = np.zeros_like(y)
    count = np.zeros_like(y)
    for k in range(length):
        ok = pos >= k
        yk = y[np.where(ok, first + k, rows)]
        present = ok[:, None] & ~np.isnan(yk)
        total += np.where(present, yk, 0.0)
        count += present
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / count


def _trailing_stats(
    y: np.ndarray, c: np.ndarray, pos: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, least-squares slope vs cycle) of y over each row's trailing `window` rows,
    over the values present in each column (a missing optional sensor's NaN is left out;
    NaN where the window holds none).

    `pos[i]` is row i's position in its asset's history: row i may look back `pos[i]`
    rows without leaving the asset.
    """
    n = len(c)
    rows = np.arange(n)
    present = ~np.isnan(y)

    def lagged(lag: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y and cycle at row i-lag, mask) — masked where i-lag is another asset or the
        value is missing."""
        back = np.maximum(rows - lag, 0)
        ok = (pos >= lag)[:, None] & present[back]
        return y[back], c[back][:, None], ok

    # Pass 1: window sums of y and cycle, oldest -> newest (fixed order).
    sum_y = np.zeros_like(y)
    sum_c = np.zeros_like(y)
    count = np.zeros_like(y)
    for lag in range(window - 1, -1, -1):
        yl, cl, ok = lagged(lag)
        sum_y += np.where(ok, yl, 0.0)
        sum_c += np.where(ok, cl, 0.0)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_y = sum_y / count
        mean_c = sum_c / count

    # Pass 2: centred cross-products (numerically stable least squares).
    sxy = np.zeros_like(y)
    sxx = np.zeros_like(y)
    for lag in range(window - 1, -1, -1):
        yl, cl, ok = lagged(lag)
        dc = np.where(ok, cl - mean_c, 0.0)
        sxx += dc * dc
        sxy += dc * np.where(ok, yl - mean_y, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(sxx > 0, sxy / np.where(sxx > 0, sxx, 1.0), 0.0)
    return mean_y, np.where(count > 0, slope, np.nan)


def _carried(df: pd.DataFrame, asset_type: AssetType, life: np.ndarray) -> np.ndarray:
    """The sensor matrix after the type's missing-value policy: an optional sensor's last
    value carried forward within its asset's life for up to `missing.limit` readings
    (`carry_forward`), or left missing (`drop`)."""
    y = df[asset_type.sensor_columns].to_numpy(dtype=np.float64)
    policy = asset_type.missing
    if policy.policy == "carry_forward" and policy.limit > 0 and np.isnan(y).any():
        keys = [df[ASSET_ID].to_numpy(), life]
        filled = pd.DataFrame(y).groupby(keys, sort=False).ffill(limit=policy.limit)
        y = filled.to_numpy(dtype=np.float64)
    return y


def window_features(
    readings: pd.DataFrame, asset_type: AssetType, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One feature row per reading of an asset type, over that asset's trailing
    `asset_type.window` readings (and `short_window` / `history_length` readings for the
    short / long scales), and against the mean of the first START_READINGS readings of the
    asset's life in `readings` (pass each asset's history from its first reading).

    `events`: a maintenance renews its asset (`last_renewal`): the windows, baseline and age
    of the readings after it count from there. A missing optional sensor (after the type's
    carry-forward) makes that row's features of the sensor NaN; other rows' windows use the
    values present. Output is sorted by (asset_id, timestamp, cycle) with a fresh index;
    `cycle` is int64, every feature float64. The window counts readings, not cycles.

    A type with `regimes` has its sensors z-scored per regime first (features.regimes.
    normalise; a reading of an undeclared regime has missing sensors); a type that declares
    regimes without fitted levels is an error.
    """
    window = asset_type.window
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    df = normalise(_sorted(readings), asset_type)  # per-regime z-scores; as is without regimes
    renewed_at = last_renewal(df, events)
    y = _carried(df, asset_type, renewed_at)  # (n, s)
    c = df[CYCLE].to_numpy(dtype=np.float64)  # (n,)
    pos = df.groupby([df[ASSET_ID].to_numpy(), renewed_at], sort=False).cumcount().to_numpy()
    mean_y, slope = _trailing_stats(y, c, pos, window)
    mean_long, slope_long = _trailing_stats(y, c, pos, history_length(window))
    mean_short, slope_short = _trailing_stats(y, c, pos, short_window(window))
    vs_start = mean_y - _start_means(y, pos, START_READINGS)
    blocks = [mean_y, slope, mean_long, slope_long, mean_short, slope_short, vs_start]
    gone = np.isnan(y)  # this row's own value is missing: its features say so
    if gone.any():
        blocks = [np.where(gone, np.nan, b) for b in blocks]

    out = pd.DataFrame(
        {
            ASSET_ID: df[ASSET_ID].astype("string").to_numpy(),
            TIMESTAMP: pd.DatetimeIndex(pd.to_datetime(df[TIMESTAMP], utc=True)).astype(
                "datetime64[ns, UTC]"
            ),
            CYCLE: df[CYCLE].astype("int64").to_numpy(),
        }
    )
    sensors = asset_type.sensor_columns
    feats = pd.DataFrame(
        np.hstack(
            [
                *blocks,
                df[asset_type.setting_columns].to_numpy(dtype=np.float64),
                (c - renewed_at)[:, None],
            ]
        ),
        columns=[
            *(c for suffix in SENSOR_FEATURES for c in sensor_features(sensors, suffix)),
            *asset_type.setting_columns,
            AGE,
        ],
    )
    out = pd.concat([out, feats], axis=1)
    out[ASSET_ID] = out[ASSET_ID].astype("string")
    return out[output_columns(asset_type)]


def tail_length(asset_type: AssetType) -> int:
    """Newest readings per asset the features of its newest reading depend on: the long
    window, and before it the readings a missing value may be carried from."""
    carry = asset_type.missing.limit if asset_type.missing.policy == "carry_forward" else 0
    return history_length(asset_type.window) + carry


def feature_history(
    readings: pd.DataFrame, asset_type: AssetType, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The readings that the features of each asset's newest reading depend on: the first
    START_READINGS and the last `tail_length` of its current life (sorted; the rest dropped).
    """
    df = _sorted(readings)
    renewed_at = last_renewal(df, events)
    current = (
        renewed_at
        >= pd.Series(renewed_at).groupby(df[ASSET_ID].to_numpy()).transform("max").to_numpy()
    )
    df = df[current].reset_index(drop=True)
    by_asset = df.groupby(ASSET_ID, sort=False)
    keep = (by_asset.cumcount() < START_READINGS) | (
        by_asset.cumcount(ascending=False) < tail_length(asset_type)
    )
    return df[keep.to_numpy()].reset_index(drop=True)


def latest_window_features(
    readings: pd.DataFrame, asset_type: AssetType, events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Features of the newest reading of each asset (the online path).

    Only `feature_history` is used — all the features need — so serving cost does not grow
    with the asset's age. Identical to the last row per asset of `window_features` on the
    full history: the trailing windows lie in the last readings, the baseline in the first,
    and the rows in between enter neither (a value carried forward comes from at most
    `missing.limit` readings before the long window, which `tail_length` keeps).
    """
    feats = window_features(feature_history(readings, asset_type, events), asset_type, events)
    return feats.groupby(ASSET_ID, sort=False).tail(1).reset_index(drop=True)
