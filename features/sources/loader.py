"""One entry point for every source the ingest reads, named by a short string.

    "simulator[:opts]"           ─► the type's simulator, run to failure (with failure events):
                                    turbofan: simulate_fleet · pump: ProgPy simulate_pump_fleet
    "simulator-live[:opts]"      ─► the same, in service (not failed yet)
         opts: comma list of "bias" | "regime" (drift) and "faults" (sensor faults)
    .../train_FD001.txt | test_FD001.txt ─► read_cmapss (turbofan)
    file.csv | file.parquet | folder     ─► read_tabular (+ events.* beside it), any type
        │
        └─► (readings, events) in the columns of settings' asset type

The CLI, the ingest flow and (later) drift monitoring all take a source string,
so "anything the ingest reads" means exactly what this function accepts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from features.contract import EVENT_COLUMNS
from features.settings import Settings

#: Drift presets of the simulator: a 1-noise-std bias on 3 responsive sensors, or a new regime.
DRIFT_PRESETS: dict[str, dict] = {
    "bias": {"bias_sensors": ["sensor_3", "sensor_4", "sensor_11"], "bias_magnitude": 1.0},
    "regime": {"new_regime": True},
}
#: Seed offset of the in-service fleet, so its assets differ from the training fleet's.
LIVE_SEED_OFFSET = 1000
_CMAPSS_FILE = re.compile(r"^(train|test)_(FD00\d)\.txt$")


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in EVENT_COLUMNS})


#: Asset types with a simulator (the readers of these types; any other type brings files).
SIMULATED_TYPES = ("turbofan", "pump")


def simulated(
    n_assets: int, seed: int, *, live: bool = False, drift: str | None = None, faults: bool = False,
    asset_type: str = "turbofan", cache_dir: Path | None = None, as_of=None,
):
    """Simulated readings + events of a type; `live` assets are in service (no failure yet),
    their last reading at `as_of` (default: the simulators' fixed snapshot time).

    `cache_dir` keeps the pump's ProgPy trajectories (seconds each) for the next run.
    """
    snapshot = {"as_of": as_of} if as_of is not None else {}
    if drift is not None and drift not in DRIFT_PRESETS:
        raise ValueError(f"unknown drift {drift!r}: choose one of {sorted(DRIFT_PRESETS)}")
    if asset_type == "pump":
        from features.sources.pump import SENSOR_COLUMNS, simulate_pump_fleet, simulate_pump_live

        if live:
            readings, _truth = simulate_pump_live(n_assets, seed, drift=drift, cache_dir=cache_dir,
                                                  **snapshot)
            events = _empty_events()
        else:
            readings, events = simulate_pump_fleet(n_assets, seed, drift=drift,
                                                   cache_dir=cache_dir)
    elif asset_type == "turbofan":
        from features.sources.cmapss import SENSOR_COLUMNS
        from features.sources.simulator import simulate_fleet, simulate_live

        preset = DRIFT_PRESETS.get(drift) if drift else None
        if live:
            readings, _truth = simulate_live(n_assets, seed + LIVE_SEED_OFFSET, drift=preset,
                                             **snapshot)
            events = _empty_events()
        else:
            readings, events = simulate_fleet(n_assets, seed, drift=preset)
    else:
        raise ValueError(f"asset type {asset_type!r} has no simulator (simulated: "
                         f"{', '.join(SIMULATED_TYPES)}): ingest its CSV or Parquet files")
    return (inject_sensor_faults(readings, seed, SENSOR_COLUMNS) if faults else readings), events


def inject_sensor_faults(readings: pd.DataFrame, seed: int, sensors: list[str],
                         rate: float = 0.002) -> pd.DataFrame:
    """Make a feed look like a real one: sensor dropouts (NaN) and re-sent (duplicate) rows.

    Real plant historians drop values and re-send messages; the validation step
    must quarantine such rows with a reason (or, for an optional sensor, keep them and
    count the gap), and the demo shows that it does.
    """
    import numpy as np

    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    out = readings.copy()
    n_bad = max(1, int(rate * len(out)))
    rows = rng.choice(len(out), size=n_bad, replace=False)
    sensors = rng.choice(sensors, size=n_bad)
    for row, sensor in zip(rows, sensors, strict=True):
        out.iloc[row, out.columns.get_loc(sensor)] = np.nan
    resent = out.iloc[rng.choice(len(out), size=n_bad, replace=False)]
    return pd.concat([out, resent], ignore_index=True)


def live_snapshot_time(asset_type):
    """Now, floored to the type's sampling period: the in-service fleet of the ingest is
    observed at the present, so its features are as fresh as a live feed's and serving's
    staleness limit (a few sampling periods) means what it says. Floored, so that ingesting
    it twice within one period stores it once."""
    from datetime import UTC, datetime

    period = pd.Timedelta(seconds=asset_type.sampling_period_s or 3600)
    return pd.Timestamp(datetime.now(UTC)).floor(period).to_pydatetime()


def _simulator_options(option: str) -> dict:
    words = [w for w in option.split(",") if w]
    unknown = [w for w in words if w != "faults" and w not in DRIFT_PRESETS]
    drifts = [w for w in words if w in DRIFT_PRESETS]
    if unknown or len(drifts) > 1:
        raise ValueError(
            f"simulator options {option!r}: use at most one of "
            f"{sorted(DRIFT_PRESETS)} and/or 'faults'"
        )
    return {"drift": drifts[0] if drifts else None, "faults": "faults" in words}


def _tabular_events(path: Path) -> pd.DataFrame:
    folder = path if path.is_dir() else path.parent
    stem = "events" if path.is_dir() else f"{path.stem}_events"
    for candidate in (folder / f"{stem}.parquet", folder / f"{stem}.csv"):
        if candidate.exists():
            events = (
                pd.read_parquet(candidate)
                if candidate.suffix == ".parquet"
                else pd.read_csv(candidate)
            )
            events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
            if "cycle" not in events:  # a timestamp type's events: ingest derives it
                events["cycle"] = pd.NA
            return events[EVENT_COLUMNS]
    return _empty_events()


def load_source(source: str, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve a source string to (readings, events) in the columns of settings' type."""
    name, _, option = source.partition(":")
    if name in ("simulator", "simulator-live"):
        live = name == "simulator-live"
        return simulated(
            settings.simulator.size(settings.asset_type),
            settings.simulator.seed,
            live=live,
            asset_type=settings.asset_type,
            cache_dir=settings.simulator_cache,
            as_of=live_snapshot_time(settings.type) if live else None,
            **_simulator_options(option),
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"source {source!r} is neither 'simulator[:opts]', 'simulator-live[:opts]' nor an "
            "existing C-MAPSS / CSV / Parquet path"
        )
    match = _CMAPSS_FILE.match(path.name)
    if match and settings.asset_type == "turbofan":
        from features.sources.cmapss import read_cmapss

        split, subset = match.groups()
        return read_cmapss(path.parent, subset=subset, split=split)
    from features.sources.tabular import read_tabular

    if path.is_dir():
        files = [
            p
            for p in sorted(path.iterdir())
            if p.suffix in (".csv", ".parquet") and not p.stem.startswith("events")
        ]
        readings = pd.concat([read_tabular(p, settings.type) for p in files], ignore_index=True)
    else:
        readings = read_tabular(path, settings.type)
    return readings, _tabular_events(path)
