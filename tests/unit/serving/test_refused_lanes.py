"""predict_fleet when a type's champion was refused (serving.hot_swap): 503 or per item."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from serving.errors import ApiError
from serving.predict import make_lane, predict_fleet
from serving.schemas import PredictRequest
from tests.unit.serving.test_predict_logic import FakePredictor, fetch

WHY = "version 3 refused: TamperedArtifactError: artifact sha256 ab != registered cd"
TYPES = {"a1": "turbofan", "a2": "turbofan", "p1": "pump"}


def lane(kind, model):
    typed = SimpleNamespace(asset_type=kind, horizon=30, type=SimpleNamespace(
        stale_after_s=None, rul_unit="cycles", rul_per_cycle=1.0, seconds_per_rul_unit=None))
    fetcher = SimpleNamespace(ttl=None)
    out = make_lane(typed, SimpleNamespace(current=model), fetcher)
    out.fetch = fetch
    return out


def types_of(ids):
    return {a: TYPES[a] for a in ids if a in TYPES}


def test_every_asked_type_refused_is_a_503_naming_type_version_and_reason():
    with pytest.raises(ApiError) as caught:
        predict_fleet(PredictRequest(asset_ids=["p1", "nobody"]), lanes={},
                      type_of=types_of, refused={"pump": WHY})
    assert caught.value.status == 503
    body = caught.value.body()
    assert "pump" in body["error"] and "version 3" in body["error"]
    assert "TamperedArtifactError" in body["error"]
    assert body["detail"] == [{"loc": ["asset_ids"], "msg": f"pump: {WHY}"}]


def test_a_served_type_is_answered_beside_a_refused_one_which_gets_the_reason_per_item():
    from serving.predict import ServedModel

    model = ServedModel(predictor=FakePredictor(), name="twinops-rul-turbofan", version="2")
    resp = predict_fleet(PredictRequest(asset_ids=["a1", "p1"]),
                         lanes={"turbofan": lane("turbofan", model)}, type_of=types_of,
                         refused={"pump": WHY})
    a1, p1 = resp.predictions
    assert a1.model_version == "2" and a1.rul == 190.0
    assert "pump" in p1.error and WHY in p1.error


def test_nothing_refused_keeps_the_old_per_item_answers():
    resp = predict_fleet(PredictRequest(asset_ids=["p1"]), lanes={}, type_of=types_of)
    assert resp.predictions[0].error == "no model of asset type 'pump' is being served"


def refuse():
    raise RuntimeError("artifact sha256 mismatch")


def service_with(lanes: dict):
    """The service class's probes over hand-made lanes (no __init__: no MLflow, no Feast)."""
    from serving.hot_swap import ModelHolder
    from serving.service import TwinService

    svc = object.__new__(TwinService.inner)
    svc._lanes = {}
    for kind, model in lanes.items():
        holder = ModelHolder(None, where_is=lambda: "3", load=refuse, poll_s=0)
        if model is not None:
            holder._current = model
        else:
            holder.check_once()
        out = lane(kind, model)
        out.holder = holder
        out.fetch = SimpleNamespace(ping=lambda: None)
        svc._lanes[kind] = out
    svc.prediction_log = SimpleNamespace(pending=0, written=0, failures=0)
    return svc


def test_readyz_is_503_with_the_reason_only_when_no_type_serves():
    from serving.predict import ServedModel

    good = ServedModel(predictor=FakePredictor(), name="twinops-rul-turbofan", version="2")
    mixed = service_with({"turbofan": good, "pump": None})
    ready = mixed.ready()
    assert ready["ready"] is True and ready["model_version"] == "2"
    assert ready["refused"] == {"pump": "version 3 refused: RuntimeError: artifact sha256 "
                                        "mismatch"}
    assert ready["reason"].startswith("pump: version 3 refused") and set(mixed.lanes) == {
        "turbofan"}
    alone = service_with({"pump": None})
    ready = alone.ready()
    assert ready["ready"] is False and "version 3 refused" in ready["reason"]
    health = alone.health()  # alive, and says what it does not serve
    assert health["status"] == "ok" and health["model_version"] is None
    assert "sha256" in health["models"]["pump"]["refused"]
