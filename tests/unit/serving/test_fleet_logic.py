"""fleet_risk and recommend_assets with a fake lane (online frame, predictor, calibration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from features.maintenance import MaintenanceProfile
from serving import fleet
from serving.decision_schemas import FleetRiskRequest, RecommendRequest
from serving.predict import Lane, ServedModel
from training.conformal import ConformalCalibration

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
#: asset -> (age in cycles, hours since its last reading); "gone" has no online row
ONLINE = {"a": (10.0, 1), "b": (90.0, 1), "c": (75.0, 1), "old": (95.0, 48)}


class Predictor:
    """RUL = 100 - age; p_fail from a real conformal calibration (residuals -10..10)."""

    feature_columns = None

    def __init__(self):
        self.calibration = ConformalCalibration([], [np.linspace(-10, 10, 201)])
        self.calls = 0

    def predict(self, frame, horizon):
        self.calls += 1
        rul = 100.0 - frame["age"].to_numpy(float)
        lo, hi = self.calibration.interval(rul, 0.9)
        return pd.DataFrame({"rul": rul, "rul_lower": lo, "rul_upper": hi,
                             "p_fail": self.calibration.p_fail(rul, horizon),
                             "health": rul / 100})


def _fetch(ids, seen):
    seen.append(list(ids))
    rows = [{"asset_id": a, "age": ONLINE[a][0],
             "feature_timestamp": NOW - timedelta(hours=ONLINE[a][1])} if a in ONLINE
            else {"asset_id": a, "age": np.nan, "feature_timestamp": pd.NaT} for a in ids]
    return pd.DataFrame(rows)


@pytest.fixture
def lane():
    seen: list = []
    model = ServedModel(predictor=Predictor(), name="twinops-rul", version="3")
    lane = Lane("turbofan", "cycles", SimpleNamespace(current=model),
                lambda ids: _fetch(ids, seen), timedelta(hours=6), horizon=20.0,
                seconds_per_unit=3600.0)
    lane.seen = seen
    return lane


ASSETS = pd.DataFrame({"asset_id": ["a", "b", "c", "old", "gone"],
                       "asset_type": ["turbofan"] * 5})


def test_fleet_risk_reads_in_batches_scores_once_and_ranks_by_weighted_risk(lane, monkeypatch):
    monkeypatch.setattr(fleet, "READ_BATCH", 2)
    answer = fleet.fleet_risk(FleetRiskRequest(page_size=10), lanes={"turbofan": lane},
                              assets=ASSETS, criticality={"c": 10.0}, now=NOW)
    assert [len(ids) for ids in lane.seen] == [2, 2, 1]
    assert lane.holder.current.predictor.calls == 1  # one vectorised model call
    order = [i.asset_id for i in answer.items]
    # b and old fail within the horizon for sure (p_fail 1); c only with p_fail 0.25, but
    # weighted x10; a is far from failure; gone has no features
    assert order == ["c", "b", "old", "a", "gone"]
    item = {i.asset_id: i for i in answer.items}
    assert item["c"].risk == pytest.approx(10 * item["c"].p_fail)
    assert item["old"].data_quality == "stale" and item["b"].data_quality == "ok"
    assert item["gone"].risk is None and item["gone"].data_quality == "no_features"
    assert item["b"].last_reading_age_s == pytest.approx(3600)
    assert [i.rank for i in answer.items] == [1, 2, 3, 4, 5] and answer.total == 5


def test_fleet_risk_pages(lane):
    pages = [fleet.fleet_risk(FleetRiskRequest(page=p, page_size=2), lanes={"turbofan": lane},
                              assets=ASSETS, criticality={}, now=NOW) for p in (1, 2, 3)]
    ids = [i.asset_id for page in pages for i in page.items]
    assert len(ids) == 5 == len(set(ids)) and pages[2].items[0].rank == 5


def test_recommend_answers_per_asset_and_never_fails_the_batch(lane):
    priced = MaintenanceProfile(failure_cost=10, planned_cost=1, parts_lead_time=2)
    profiles = {"a": priced, "b": priced, "old": priced, "c": MaintenanceProfile()}
    answer = fleet.recommend_assets(
        RecommendRequest(asset_ids=["b", "a", "old", "c", "gone", "nobody"]),
        lanes={"turbofan": lane}, profiles=profiles, now=NOW,
        type_of=lambda ids: {i: "turbofan" for i in ids if i != "nobody"})
    b, a, old, c, gone, nobody = answer.recommendations
    assert b.action == "plan_maintenance" and b.due_in >= 2  # RUL ~10 cycles, lead time 2
    assert b.due_date == (NOW - timedelta(hours=1) + timedelta(hours=b.due_in)).isoformat()
    assert b.cost_rate < b.cost_rate_run_to_failure and b.model_version == "3"
    assert a.action == "run"  # RUL ~90: parts need not be ordered within 20 cycles
    assert old.action == "inspect"
    assert "no maintenance costs for 'c'" in c.error
    assert "no online features" in gone.error and "not in the asset registry" in nobody.error


def test_an_asset_that_failed_and_has_not_reported_since_is_out_of_service(lane):
    failed_at = {"old": (NOW - timedelta(hours=48)).timestamp(),  # its last reading: 48 h ago
                 "gone": (NOW - timedelta(days=9)).timestamp(),   # no features at all
                 "b": (NOW - timedelta(hours=2)).timestamp()}     # renewed: read 1 h ago
    answer = fleet.fleet_risk(FleetRiskRequest(page_size=10), lanes={"turbofan": lane},
                              assets=ASSETS, criticality={}, failed_at=failed_at, now=NOW)
    assert [i.asset_id for i in answer.items] == ["b", "c", "a"]
    assert answer.total == 3 and answer.out_of_service == 2
