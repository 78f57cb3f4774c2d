"""One entry point for every source the ingest reads, named by a short string.

    "simulator"                  ─► simulate_fleet (run-to-failure, with failure events)
    "simulator-live[:bias|regime]" ─► simulate_live (in service, optional drift)
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


def simulated(n_assets: int, seed: int, *, live: bool = False, drift: str | None = None):
    """Simulated readings + events; `live` assets are in service (no failure yet)."""
    from features.sources.simulator import simulate_fleet, simulate_live

    if drift is not None and drift not in DRIFT_PRESETS:
        raise ValueError(f"unknown drift {drift!r}: choose one of {sorted(DRIFT_PRESETS)}")
    preset = DRIFT_PRESETS.get(drift) if drift else None
    if live:
        readings, _truth = simulate_live(n_assets, seed + LIVE_SEED_OFFSET, drift=preset)
        return readings, _empty_events()
    return simulate_fleet(n_assets, seed, drift=preset)


def _tabular_events(path: Path) -> pd.DataFrame:
    folder = path if path.is_dir() else path.parent
    stem = "events" if path.is_dir() else f"{path.stem}_events"
    for candidate in (folder / f"{stem}.parquet", folder / f"{stem}.csv"):
        if candidate.exists():
            events = (pd.read_parquet(candidate) if candidate.suffix == ".parquet"
                      else pd.read_csv(candidate))
            events["timestamp"] = pd.to_datetime(events["timestamp"], utc=True)
            return events[EVENT_COLUMNS]
    return _empty_events()


def load_source(source: str, settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resolve a source string to (readings, events) in the data contract."""
    name, _, option = source.partition(":")
    if name == "simulator":
        return simulated(settings.simulator.n_assets, settings.simulator.seed,
                         drift=option or None)
    if name == "simulator-live":
        return simulated(settings.simulator.n_assets, settings.simulator.seed, live=True,
                         drift=option or None)
    path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"source {source!r} is neither 'simulator', 'simulator-live[:bias|regime]' nor an "
            "existing C-MAPSS / CSV / Parquet path"
        )
    match = _CMAPSS_FILE.match(path.name)
    if match:
        from features.sources.cmapss import read_cmapss

        split, subset = match.groups()
        return read_cmapss(path.parent, subset=subset, split=split)
    from features.sources.tabular import read_tabular

    if path.is_dir():
        files = [p for p in sorted(path.iterdir()) if p.suffix in (".csv", ".parquet")
                 and not p.stem.startswith("events")]
        readings = pd.concat([read_tabular(p) for p in files], ignore_index=True)
    else:
        readings = read_tabular(path)
    return readings, _tabular_events(path)
