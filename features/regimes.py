"""Per-regime normalisation: sensors as z-scores within their operating condition.

    declaration `regimes.settings` {setting: step}
        ─► regime_keys: each reading's settings snapped to the steps (its condition)
    training readings ─► fit_regimes ─► the type with `regimes.levels`
        (per regime: every sensor's mean and std)  ─► regimes_yaml ─► the user's declaration
    window_features / latest_window_features ─► normalise ─► (x - mean) / std of the
        reading's own regime ─► the windows, as for a single-condition fleet

Why: in a multi-condition fleet (C-MAPSS FD002 and FD004: six operating conditions set by
altitude, Mach number and throttle angle) a sensor's level jumps between conditions by far
more than wear moves it in a whole life, and every flight may be flown in another one. A
window over raw values then measures the flight plan, not the engine. The standard practice
on these sets is to cluster the readings by their settings and z-score each sensor by the
statistics of its condition over the training fleet; what is left is wear and noise, and the
windows, slopes and `*_vs_start` baselines read as they do on a single-condition fleet.

Why the statistics live in the declaration: they are the only state the features would
need, and state fitted outside the config is how serving and training come to disagree (a
stale scaler file on one side). Kept in the asset type, the transform stays a pure function
of (readings, type): offline and online read the same numbers, and `latest_window_features`
over `feature_history` stays bit-identical to `window_features`' last row. Refit (and so
retrain) when the fleet's conditions change.

A reading whose regime key is not among the levels gets NaN sensors: the model cannot read
a condition it was never shown, and guessing a neighbour's statistics would feed it numbers
on a scale it never saw. Its sensors are then missing like an optional sensor's dropout: the
type's `missing` policy carries the last readable z-scores forward for up to `limit`
readings, then (or at once with `drop`) those features are NaN and the model imputes them.
Ingest keeps such readings and counts them (features.validation: `unknown_regime`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import yaml

from features.asset_types import AssetType, AssetTypeError, Regimes

#: Fewest readings (and values of each sensor) a regime is fitted from: a deviation from
#: fewer is too noisy to scale by, and such a regime is usually a mis-set step or a stray
#: reading rather than an operating condition.
MIN_REGIME_READINGS = 10


def _grid(readings: pd.DataFrame, regimes: Regimes) -> np.ndarray:
    """(n, k) settings in steps, rounded: whole numbers as floats (NaN: a missing setting)."""
    values = readings[list(regimes.settings)].to_numpy(dtype=np.float64)
    return np.rint(values / np.array(list(regimes.settings.values())))


def regime_keys(readings: pd.DataFrame, regimes: Regimes) -> np.ndarray:
    """(n, k) regime key per reading: each of `regimes.settings` rounded to its step, in
    their order, in the settings' own units (NaN where the reading lacks the setting)."""
    steps = np.array(list(regimes.settings.values()))
    return np.round(_grid(readings, regimes) * steps, 12) + 0.0  # + 0.0: no -0.0


def level_index(readings: pd.DataFrame, regimes: Regimes) -> np.ndarray:
    """Per reading, the index of its regime in `regimes.levels`; -1 where none matches."""
    grid = _grid(readings, regimes)
    steps = np.array(list(regimes.settings.values()))
    out = np.full(len(readings), -1, dtype=np.int64)
    for j, level in enumerate(regimes.levels):
        key = np.rint(np.asarray(level.key, dtype=np.float64) / steps)
        out[(grid == key).all(axis=1)] = j
    return out


def _key_text(key) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in key) + "]"


def fit_regimes(readings: pd.DataFrame, asset_type: AssetType) -> AssetType:
    """The type with `regimes.levels` fitted on `readings` (the training fleet's valid
    readings): per regime found, every sensor's mean and population std over the values
    present. Readings whose settings are missing are left out.

    A regime with fewer than MIN_REGIME_READINGS readings, or a sensor with fewer values in
    one, is an error naming it: refit with a coarser step or without the stray readings.
    """
    regimes = asset_type.regimes
    if regimes is None:
        raise AssetTypeError(
            f"asset type {asset_type.name!r} declares no regimes: add `regimes: {{settings: "
            f"{{<setting>: <step>, ...}}}}` to its declaration first"
        )
    sensors = asset_type.sensor_columns
    grid = _grid(readings, regimes)
    usable = ~np.isnan(grid).any(axis=1)
    if not usable.any():
        raise AssetTypeError(f"asset type {asset_type.name!r}: no readings to fit regimes on")
    grid, y = grid[usable], readings[sensors].to_numpy(dtype=np.float64)[usable]
    steps = np.array(list(regimes.settings.values()))
    found, inverse = np.unique(grid, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    levels = []
    for j, cell in enumerate(found):
        key = [float(v) for v in np.round(cell * steps, 12) + 0.0]
        rows = y[inverse == j]
        if len(rows) < MIN_REGIME_READINGS:
            raise AssetTypeError(
                f"asset type {asset_type.name!r}: regime {_key_text(key)} "
                f"({', '.join(regimes.settings)}) has {len(rows)} reading(s), fewer than "
                f"{MIN_REGIME_READINGS}: use a coarser step or drop the stray readings"
            )
        counts = (~np.isnan(rows)).sum(axis=0)
        thin = [
            f"{s} ({int(n)})"
            for s, n in zip(sensors, counts, strict=True)
            if n < MIN_REGIME_READINGS
        ]
        if thin:
            raise AssetTypeError(
                f"asset type {asset_type.name!r}: regime {_key_text(key)} has fewer than "
                f"{MIN_REGIME_READINGS} values of {', '.join(thin)}"
            )
        mean, std = np.nanmean(rows, axis=0), np.nanstd(rows, axis=0)
        # A sensor constant in the regime: its own value and 0, not a sum's rounding residue
        # (a std of 1e-13 would blow that residue up to an O(1) z-score).
        constant = np.nanmin(rows, axis=0) == np.nanmax(rows, axis=0)
        mean = np.where(constant, np.nanmin(rows, axis=0), mean)
        std = np.where(constant, 0.0, std)
        levels.append(
            {
                "key": key,
                "mean": {s: float(v) for s, v in zip(sensors, mean, strict=True)},
                "std": {s: float(v) for s, v in zip(sensors, std, strict=True)},
            }
        )
    fitted = {"settings": dict(regimes.settings), "levels": levels}
    return AssetType.model_validate({**asset_type.model_dump(), "regimes": fitted})


def normalise(readings: pd.DataFrame, asset_type: AssetType) -> pd.DataFrame:
    """The readings with each sensor as a z-score in the reading's regime: (x - mean) / std
    of its level (a std of 0 divides as 1). Settings and other columns are untouched, as are
    the row order and index. A reading whose regime has no level gets NaN sensors (see the
    module docstring). A type without `regimes` is returned as is.
    """
    regimes = asset_type.regimes
    if regimes is None:
        return readings
    if not regimes.levels:
        raise AssetTypeError(
            f"asset type {asset_type.name!r} declares regimes ({', '.join(regimes.settings)}) "
            f"but no fitted levels: run features.regimes.fit_regimes on the training readings "
            f"and add its regimes_yaml() to the declaration"
        )
    sensors = asset_type.sensor_columns
    mean = np.array([[lv.mean[s] for s in sensors] for lv in regimes.levels])
    std = np.array([[lv.std[s] for s in sensors] for lv in regimes.levels])
    std = np.where(std > 0, std, 1.0)
    # One extra row of NaN statistics for the readings of no declared regime.
    mean = np.vstack([mean, np.full(len(sensors), np.nan)])
    std = np.vstack([std, np.ones(len(sensors))])
    level = level_index(readings, regimes)  # -1 picks the NaN row
    y = readings[sensors].to_numpy(dtype=np.float64)
    out = readings.copy()
    out[sensors] = (y - mean[level]) / std[level]
    return out


def regimes_yaml(asset_type: AssetType) -> str:
    """The type's `regimes` block as YAML, to paste into (or replace in) its declaration.
    Floats are written exactly, so the declaration reproduces the fitted features."""
    if asset_type.regimes is None:
        raise AssetTypeError(f"asset type {asset_type.name!r} declares no regimes")
    block = asset_type.regimes.model_dump(mode="json")
    return yaml.dump({"regimes": block}, Dumper=_Dumper, sort_keys=False, width=100)


class _Dumper(yaml.SafeDumper):
    """Block mappings (a sensor a line), keys in flow style (`key: [0.0, 0.0, 100.0]`)."""


def _list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)  # a key: one line
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _list)
