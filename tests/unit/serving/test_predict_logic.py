"""predict_assets with a fake predictor and a fake online-features frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.prediction_log import PredictionLog
from serving.predict import NOT_FINITE, UNKNOWN_ASSET, ServedModel, known_mask, predict_assets
from serving.schemas import PredictRequest

FEATURES = ["cycle", "sensor_2_mean", "sensor_2_slope"]
ONLINE = {  # what the online store knows
    "a1": {"cycle": 10.0, "sensor_2_mean": 642.1, "sensor_2_slope": 0.01},
    "a2": {"cycle": 150.0, "sensor_2_mean": 643.0, "sensor_2_slope": 0.05},
    "a3": {"cycle": 80.0, "sensor_2_mean": 642.5, "sensor_2_slope": 0.02},
}


class FakePredictor:
    """RUL falls with cycle; records what it was asked."""

    def __init__(self):
        self.calls = []

    def predict(self, features: pd.DataFrame, horizon: int) -> pd.DataFrame:
        self.calls.append((features.copy(), horizon))
        rul = 200.0 - features["cycle"].to_numpy(dtype=float)
        return pd.DataFrame(
            {
                "rul": rul,
                "rul_lower": rul - 10,
                "rul_upper": rul + 10,
                "interval_level": 0.9,
                "p_fail": (rul <= horizon).astype(float),
                "health": rul / 200.0,
            }
        )


def fetch(asset_ids):
    """Like features.store.online_features: a row per asked asset, NaN if unknown."""
    rows = [{"asset_id": a, **ONLINE.get(a, dict.fromkeys(FEATURES, np.nan))} for a in asset_ids]
    return pd.DataFrame(rows)


@pytest.fixture
def model():
    return ServedModel(predictor=FakePredictor(), name="twinops-rul", version="7")


def test_known_assets_are_answered_in_request_order(model, tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    req = PredictRequest(asset_ids=["a2", "a1"], horizon=60)
    resp = predict_assets(req, model=model, fetch_features=fetch, default_horizon=30, log=log)
    assert (resp.model_name, resp.model_version) == ("twinops-rul", "7")
    a2, a1 = resp.predictions
    assert (a2.asset_id, a1.asset_id) == ("a2", "a1")
    assert a2.rul == 50.0 and a2.p_fail == 1.0 and a2.horizon == 60
    assert a1.rul == 190.0 and a1.p_fail == 0.0 and a1.health == pytest.approx(0.95)
    assert a1.model_version == "7" and a1.interval_level == 0.9
    assert model.predictor.calls[0][1] == 60
    logged = log.read()
    assert logged["asset_id"].tolist() == ["a2", "a1"]
    assert logged["horizon"].tolist() == [60, 60]
    assert logged["sensor_2_slope"].tolist() == [0.05, 0.01]  # the inputs are logged too
    assert logged["rul"].tolist() == [50.0, 190.0]


def test_unknown_asset_is_a_per_item_error_others_still_answered(model, tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    req = PredictRequest(asset_ids=["a1", "ghost", "a3"])
    resp = predict_assets(req, model=model, fetch_features=fetch, default_horizon=30, log=log)
    items = [p.model_dump() for p in resp.predictions]
    assert items[1] == {"asset_id": "ghost", "error": UNKNOWN_ASSET}
    assert items[0]["rul"] == 190.0 and items[2]["rul"] == 120.0
    assert items[0]["horizon"] == 30  # default horizon from settings
    # the predictor never sees the unknown asset; only answered items are logged
    assert model.predictor.calls[0][0]["asset_id"].tolist() == ["a1", "a3"]
    assert log.read()["asset_id"].tolist() == ["a1", "a3"]


def test_all_unknown_does_not_call_the_model(model):
    req = PredictRequest(asset_ids=["x", "y"])
    resp = predict_assets(req, model=model, fetch_features=fetch, default_horizon=30)
    assert [p.error for p in resp.predictions] == [UNKNOWN_ASSET] * 2
    assert model.predictor.calls == []


def test_fetcher_that_drops_or_reorders_rows(model):
    def sloppy(asset_ids):
        return fetch(list(reversed([a for a in asset_ids if a in ONLINE])))

    req = PredictRequest(asset_ids=["a1", "nope", "a2"])
    resp = predict_assets(req, model=model, fetch_features=sloppy, default_horizon=30)
    assert [p.asset_id for p in resp.predictions] == ["a1", "nope", "a2"]
    assert resp.predictions[0].rul == 190.0 and resp.predictions[2].rul == 50.0
    assert resp.predictions[1].error == UNKNOWN_ASSET


def test_duplicate_ids_scored_once_answered_each_time(model, tmp_path):
    log = PredictionLog(tmp_path / "p.sqlite")
    req = PredictRequest(asset_ids=["a1", "a1"])
    resp = predict_assets(req, model=model, fetch_features=fetch, default_horizon=30, log=log)
    assert [p.rul for p in resp.predictions] == [190.0, 190.0]
    assert len(model.predictor.calls[0][0]) == 1 and log.count() == 1


def test_non_finite_model_output_is_a_per_item_error(model):
    class NaNPredictor(FakePredictor):
        def predict(self, features, horizon):
            out = super().predict(features, horizon)
            out.loc[features["asset_id"].eq("a1").to_numpy(), "rul"] = np.nan
            return out

    m = ServedModel(predictor=NaNPredictor(), name="n", version="1")
    resp = predict_assets(
        PredictRequest(asset_ids=["a1", "a2"]), model=m, fetch_features=fetch, default_horizon=30
    )
    assert resp.predictions[0].error == NOT_FINITE and resp.predictions[1].rul == 50.0


def test_log_failure_does_not_fail_the_request(model, caplog):
    class BrokenLog:
        def append(self, records):
            raise OSError("disk full")

    resp = predict_assets(
        PredictRequest(asset_ids=["a1"]),
        model=model,
        fetch_features=fetch,
        default_horizon=30,
        log=BrokenLog(),
    )
    assert resp.predictions[0].rul == 190.0
    assert "prediction log append failed" in caplog.text


def test_response_is_json_ready(model):
    resp = predict_assets(
        PredictRequest(asset_ids=["a1", "zz"]),
        model=model,
        fetch_features=fetch,
        default_horizon=30,
    )
    body = resp.model_dump(mode="json")
    assert set(body) == {"model_name", "model_version", "model_alias", "predictions"}
    assert set(body["predictions"][0]) == {
        "asset_id",
        "rul",
        "rul_lower",
        "rul_upper",
        "interval_level",
        "p_fail",
        "horizon",
        "health",
        "model_name",
        "model_version",
        "model_alias",
        "asset_type",
        "rul_unit",
        "feature_timestamp",
        "feature_age_s",
        "stale",
    }
    assert body["predictions"][1] == {"asset_id": "zz", "error": UNKNOWN_ASSET}


def test_known_mask_conventions():
    df = pd.DataFrame({"asset_id": ["a", "b"], "x": [1.0, np.nan]})
    assert known_mask(df).tolist() == [True, False]
    flagged = df.assign(found=[True, False], x=[1.0, 2.0])
    assert known_mask(flagged).tolist() == [True, False]
    missing = df.assign(missing=[False, True], x=[1.0, 2.0])
    assert known_mask(missing).tolist() == [True, False]
    ts = df.assign(feature_timestamp=pd.Timestamp("2026-01-01", tz="UTC"))
    assert known_mask(ts).tolist() == [True, False]  # a timestamp alone is not a feature


def test_served_model_from_loaded():
    from training.registry import LoadedModel

    p = object()
    loaded = LoadedModel(predictor=p, name="m", version=3, run_id=None)
    assert ServedModel.from_loaded(loaded, alias="champion") == ServedModel(p, "m", "3", "champion")


def test_feature_compatibility_check():
    from serving.predict import check_feature_compatibility

    class P(FakePredictor):
        feature_columns = ["cycle", "entity_cycle"]

    with pytest.raises(RuntimeError, match="entity_cycle"):
        check_feature_compatibility(ServedModel(P(), "m", "1"), FEATURES)
    P.feature_columns = ["cycle"]
    check_feature_compatibility(ServedModel(P(), "m", "1"), FEATURES)
    check_feature_compatibility(ServedModel(FakePredictor(), "m", "1"), FEATURES)  # no attr


def test_stale_flag_and_feature_age_against_the_ttl():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 10, tzinfo=UTC)
    stamps = {"a1": now - timedelta(days=1), "a2": now - timedelta(days=5)}

    def fetch_with_time(asset_ids):
        frame = fetch(asset_ids)
        frame["feature_timestamp"] = [stamps.get(a) for a in asset_ids]
        return frame

    model = ServedModel(predictor=FakePredictor(), name="m", version="3", alias="champion")
    resp = predict_assets(PredictRequest(asset_ids=["a1", "a2"]), model=model,
                          fetch_features=fetch_with_time, default_horizon=30,
                          ttl=timedelta(days=3), now=now)
    fresh, old = resp.predictions
    assert (fresh.stale, old.stale) == (False, True)
    assert fresh.feature_age_s == 86400.0 and old.feature_age_s == 5 * 86400.0
    assert fresh.feature_timestamp.startswith("2026-01-09T00:00:00")
    assert resp.model_alias == fresh.model_alias == "champion"
