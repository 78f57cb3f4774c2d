"""RUL labels from failure events."""

import numpy as np
import pandas as pd

from features.labels import rul_labels
from features.sources.simulator import simulate_fleet, simulate_live


def _events(rows):
    df = pd.DataFrame(rows, columns=["asset_id", "timestamp", "cycle", "event"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


def test_rul_counts_down_to_zero_at_failure():
    r, e = simulate_fleet(3, seed=1)
    lab = rul_labels(r, e)
    assert list(lab.columns) == ["asset_id", "timestamp", "cycle", "rul"]
    assert len(lab) == len(r)
    a = lab[lab["asset_id"] == "sim-0001"]
    life = e.set_index("asset_id").loc["sim-0001", "cycle"]
    assert a["rul"].iloc[0] == life - 1 and a["rul"].iloc[-1] == 0
    assert (a["rul"].diff().dropna() == -1).all()
    # Row order of the readings is kept.
    assert lab["cycle"].tolist() == r["cycle"].tolist()


def test_cap_and_assets_without_failure_left_out():
    r, e = simulate_fleet(2, seed=1)
    live, _ = simulate_live(2, seed=2)
    both = pd.concat([r, live], ignore_index=True)
    lab = rul_labels(both, e, cap=125)
    assert set(lab["asset_id"]) == set(e["asset_id"])
    assert lab["rul"].max() == 125.0 and lab["rul"].min() == 0.0


def test_maintenance_renews_life_so_the_failure_after_it_labels_the_new_life_only():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    r = pd.DataFrame({"asset_id": ["A"] * 8, "timestamp": [t] * 8, "cycle": range(1, 9)})
    e = _events([("A", t, 3, "maintenance"), ("A", t, 6, "failure")])
    lab = rul_labels(r, e)
    # Cycles 1-3 end in the maintenance after reading 3 (censored, not a failure):
    # unlabelled. The failure at 6 labels the new life (4-6); after it nothing is known.
    assert lab["cycle"].tolist() == [4, 5, 6]
    assert lab["rul"].tolist() == [2.0, 1.0, 0.0]


def test_hours_type_labels_in_hours():
    t = pd.Timestamp("2024-01-01", tz="UTC")
    r = pd.DataFrame({"asset_id": ["A"] * 4, "timestamp": [t] * 4, "cycle": [1, 2, 3, 4]})
    lab = rul_labels(r, _events([("A", t, 4, "failure")]), per_cycle=300 / 3600)
    np.testing.assert_allclose(lab["rul"], [0.25, 1 / 6, 1 / 12, 0.0])


def test_no_failures_gives_empty_frame():
    r, _ = simulate_live(2, seed=2)
    lab = rul_labels(r, _events([]))
    assert lab.empty and list(lab.columns) == ["asset_id", "timestamp", "cycle", "rul"]
