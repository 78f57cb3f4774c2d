"""One entry point for every source the ingest reads, named by a short string.

    "simulator[:opts]"           ─► simulate_fleet (run-to-failure, with failure events)
    "simulator-live[:opts]"      ─► simulate_live (in service, not failed yet)
         opts: comma list of "bias" | "regime" (drift) and "faults" (sensor faults)
    .../train_FD001.txt | test_FD001.txt ─► read_cmapss
    file.csv | file.parquet | folder     ─► read_tabular (+ events.* beside it)
        │
        └─► (readings, events) in the contract's columns

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


def simulated(
    n_assets: int, seed: int, *, live: bool = False, drift: str | None = None, faults: bool = False
):
    """Simulated readings + events; `live` assets are in service (no failure yet)."""
    from features.sources.simulator import simulate_fleet, simulate_live

    if drift is not None and drift not in DRIFT_PRESETS:
        raise ValueError(f"unknown drift {drift!r}: choose one of {sorted(DRIFT_PRESETS)}")
    preset = DRIFT_PRESETS.get(drift) if drift else None
    if live:
        readings, _truth = simulate_live(n_assets, seed + LIVE_SEED_OFFSET, drift=preset)
        events = _empty_events()
    else:
        readings, events = simulate_fleet(n_assets, seed, drift=preset)
    return (inject_sensor_faults(readings, seed) if faults else readings), events


def inject_sensor_faults(readings: pd.DataFrame, seed: int, rate: float = 0.002) -> pd.DataFrame:
    """Make a feed look like a real one: sensor dropouts (NaN) and re-sent (duplicate) rows.

    Real plant historians drop values and re-send messages; the validation step
    must quarantine such rows with a reason, and the demo shows that it does.
    """
    import numpy as np

    from features.contract import SENSOR_COLUMNS

    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    out = readings.copy()
    n_bad = max(1, int(rate * len(out)))
    rows = rng.choice(len(out), size=n_bad, replace=False)
    sensors = rng.choice(SENSOR_COLUMNS, size=n_bad)
    for row, sensor in zip(rows, sensors, strict=True):
        out.iloc[row, out.columns.get_loc(sensor)] = np.nan
    resent = out.iloc[rng.choice(len(out), size=n_bad, replace=False)]
    return pd.concat([out, resent], ignore_index=True)


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
            return events[EVENT_COLUMNS]
    return _empty_events()


def load_source(source: str, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve a source string to (readings, events) in the data contract."""
    name, _, option = source.partition(":")
    if name in ("simulator", "simulator-live"):
        return simulated(
            settings.simulator.n_assets,
            settings.simulator.seed,
            live=name == "simulator-live",
            **_simulator_options(option),
        )
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"source {source!r} is neither 'simulator[:opts]', 'simulator-live[:opts]' nor an "
            "existing C-MAPSS / CSV / Parquet path"
        )
    match = _CMAPSS_FILE.match(path.name)
    if match:
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
        readings = pd.concat([read_tabular(p) for p in files], ignore_index=True)
    else:
        readings = read_tabular(path)
    return readings, _tabular_events(path)
