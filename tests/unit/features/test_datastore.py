"""The raw data store: idempotent re-ingest, conflicts handed back, one writer at a time."""

from __future__ import annotations

import pandas as pd
import pytest

from features import datastore
from features.settings import get_settings
from features.sources.simulator import simulate_fleet
from features.validation import validate_readings
from tests.layout import TURBOFAN


@pytest.fixture
def settings(tmp_path):
    return get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "data")


def test_reingest_is_idempotent_and_conflicts_come_back(settings):
    readings, events = simulate_fleet(3, seed=1)
    valid = validate_readings(readings, TURBOFAN).valid
    assert datastore.append_readings(settings, valid)[0] == len(readings)

    changed = valid.copy()
    changed.loc[changed.index[:5], "sensor_2"] += 1.0
    appended, same, conflicts = datastore.append_readings(settings, changed)
    assert appended == 0 and same == len(valid) - 5 and len(conflicts) == 5
    stored = datastore.load_readings(settings)
    assert len(stored) == len(readings)
    # the stored values were not overwritten by the conflicting rows
    pd.testing.assert_series_equal(
        stored["sensor_2"].reset_index(drop=True), valid["sensor_2"].reset_index(drop=True),
        check_names=False,
    )

    assert datastore.append_events(settings, events) == len(events)
    assert datastore.append_events(settings, events) == 0


def test_write_lock_is_reentrant_and_exclusive(settings):
    import threading

    entered = []
    with datastore.write_lock(settings), datastore.write_lock(settings):  # no self-deadlock
        other = threading.Thread(
            target=lambda: (datastore.write_lock(settings).__enter__(), entered.append(1)),
            daemon=True)
        other.start()
        other.join(timeout=0.5)
        assert not entered, "another writer got in while the lock was held"
    other.join(timeout=5)
    assert entered == [1]
