"""Virtual assets keep to one degradation path: no unit takes the pace of another mode."""

import numpy as np

from features.labels import rul_labels
from features.sources.simulator import fault_modes_of, simulate_fleet
from tests.layout import typed
from training.augment import fleet_paces, same_wear_path


def _paths(n, seed, modes):
    readings, events = simulate_fleet(n, seed, fault_modes=modes)
    frame = rul_labels(readings, events)
    return frame, same_wear_path(frame, readings, typed(30))


def test_two_fault_modes_are_two_paths_and_one_mode_is_one():
    frame, paths = _paths(30, 7, 2)
    mode = dict(zip((f"sim-{i + 1:04d}" for i in range(30)), fault_modes_of(30, 7, 2),
                    strict=True))
    assert {frozenset(p) for p in paths.values()} == {
        frozenset(a for a in mode if mode[a] == m) for m in set(mode.values())}
    _, one = _paths(30, 7, 1)
    assert all(p == set(one) for p in one.values())


def test_paces_are_drawn_from_the_units_own_path_only():
    frame, paths = _paths(30, 3, 2)
    paces = fleet_paces(frame, copies=4, seed=0, same_path=paths)
    for u, drawn in paces.items():
        assert drawn and all(donor in paths[u] and donor != u for _, donor in drawn)
    # without paths every unit of the fleet may lend its pace
    free = fleet_paces(frame, copies=4, seed=0)
    assert any(d not in paths[u] for u, drawn in free.items() for _, d in drawn)
    assert np.isfinite([k for drawn in paces.values() for k, _ in drawn]).all()
