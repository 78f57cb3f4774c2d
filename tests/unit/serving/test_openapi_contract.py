"""serving.openapi: the document says the answers, error shape and limits the server has.

Built from the real service's document (no server): the live check is
tests/integration/test_api_contract.py (schemathesis and a generated client).
"""

from __future__ import annotations

import copy
import functools

import pytest

ROUTES = ("/predict", "/predict_window", "/ingest", "/feedback", "/fleet/risk", "/recommend",
          "/whatif")


@functools.cache
def _bentoml_document() -> dict:
    import json

    from serving.health import openapi30
    from serving.service import TwinService

    document = json.loads(json.dumps(TwinService.openapi_spec.asdict(), default=str))
    openapi30(document)
    return document


def _document(**serving) -> dict:
    from features.settings import Settings
    from serving.openapi import declare_contract

    document = copy.deepcopy(_bentoml_document())
    declare_contract(document, Settings(serving=serving))
    return document


def _request(document: dict, path: str) -> dict:
    return document["paths"][path]["post"]["requestBody"]["content"]["application/json"][
        "schema"]


def test_valid_openapi_3_0_with_every_answer_of_every_route():
    from openapi_spec_validator import OpenAPIV30SpecValidator

    document = _document(auth_enabled=True)
    assert [e.message[:200] for e in OpenAPIV30SpecValidator(document).iter_errors()] == []
    for path in ROUTES:
        operation = document["paths"][path]["post"]
        assert operation["requestBody"]["required"] is True
        assert {"200", "400", "401", "403", "413", "415"} <= set(operation["responses"]), path
        assert "500" not in operation["responses"]  # a 500 is a bug, never a contract
        assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
    assert set(document["paths"]["/whatif"]["post"]["responses"]) >= {"404", "422", "503"}
    assert "422" in document["paths"]["/ingest"]["post"]["responses"]
    assert "404" not in document["paths"]["/predict"]["post"]["responses"]
    assert document["paths"]["/healthz"]["get"]["security"] == []
    assert set(document["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_without_api_keys_no_401_403_and_no_security():
    document = _document(auth_enabled=False)
    responses = document["paths"]["/predict"]["post"]["responses"]
    assert "401" not in responses and "403" not in responses
    assert "securitySchemes" not in document["components"]
    assert "security" not in document["paths"]["/predict"]["post"]


@pytest.mark.parametrize("body", [
    {"error": "missing or invalid API key"},  # serving.guard's answers
    {"error": "2 reading(s) rejected", "detail": [{"loc": ["readings", 0], "msg": "nan"}]},
    # BentoML's pydantic 400 (serving.schemas.parse_request): extra keys per detail
    {"error": "1 validation error", "detail": [{"type": "missing", "loc": ["asset_ids"],
                                                "msg": "Field required", "url": "x"}]},
])
def test_the_error_schema_takes_every_error_body_the_server_sends(body):
    from openapi_schema_validator import OAS30Validator

    from serving.errors import ApiError

    schemas = _document()["components"]["schemas"]
    resolver = {"components": {"schemas": schemas}}
    validator = OAS30Validator({**schemas["Error"], **resolver})
    validator.validate(body)
    validator.validate(ApiError(422, "x", [{"loc": ["events", 3], "msg": "y"}]).body())
    with pytest.raises(Exception, match="is not of type 'array'"):
        validator.validate({"error": "x", "detail": "a string"})  # BentoML's old declaration


def test_limits_come_from_the_settings():
    from features.transforms import history_length
    from serving.schemas import MAX_EXPLAINED

    small = _document(max_batch=8, max_rows=90)
    assert _request(small, "/predict")["properties"]["asset_ids"]["maxItems"] == 8
    assert "anyOf" not in _request(small, "/predict")  # 8 ids: explain: true is no tighter
    for path, field in (("/ingest", "readings"), ("/feedback", "events")):
        assert _request(small, path)["properties"][field]["maxItems"] == 90
    large = _document(max_batch=256)
    assert _request(large, "/predict") == {"anyOf": [
        {"$ref": "#/components/schemas/PredictRequest"},
        {"$ref": "#/components/schemas/ExplainedPredictRequest"}]}
    plain, explained = (large["components"]["schemas"][n]["properties"]
                        for n in ("PredictRequest", "ExplainedPredictRequest"))
    assert (plain["asset_ids"]["maxItems"], plain["explain"]["enum"]) == (256, [False])
    assert (explained["asset_ids"]["maxItems"], explained["explain"]["enum"]) == (
        MAX_EXPLAINED, [True])
    from features.settings import Settings

    windows = [history_length(t.window) for t in Settings().declared_types().values()]
    readings = _request(small, "/predict_window")["properties"]["readings"]
    assert readings["minItems"] == min(windows) and str(min(windows)) in readings[
        "description"]
    assert "1000000 bytes" in small["paths"]["/predict"]["post"]["requestBody"]["description"]


def test_an_event_needs_cycle_or_timestamp_and_whatif_names_the_settings():
    from openapi_schema_validator import OAS30Validator

    document = _document()
    schemas = document["components"]["schemas"]
    event = OAS30Validator(schemas["Event"])
    assert event.is_valid({"asset_id": "a", "event": "failure", "cycle": 3})
    assert event.is_valid({"asset_id": "a", "event": "failure",
                           "timestamp": "2026-01-01T00:00:00Z"})
    assert not event.is_valid({"asset_id": "a", "event": "failure"})
    assert not event.is_valid({"asset_id": "a", "event": "failure", "cycle": None})
    profile = OAS30Validator(_request(document, "/whatif")["properties"]["profile"])
    assert profile.is_valid({"V": 520.0}) and not profile.is_valid({"": 1.0})
    assert not profile.is_valid({"speed": 1.0})
    fleet = OAS30Validator(_request(document, "/fleet/risk")["properties"]["asset_type"])
    assert fleet.is_valid("turbofan") and fleet.is_valid(None) and not fleet.is_valid("0")


@pytest.mark.parametrize("model, body, field", [
    ("serving.schemas:PredictRequest", {"asset_ids": ["a"], "horizon": True}, "horizon"),
    ("serving.schemas:PredictRequest", {"asset_ids": ["a"], "horizon": "5"}, "horizon"),
    ("serving.decision_schemas:RecommendRequest", {"asset_ids": ["a"], "horizon": True},
     "horizon"),
    ("serving.decision_schemas:FleetRiskRequest", {"page": True}, "page"),
    ("serving.whatif_schemas:WhatIfRequest", {"asset_id": "a", "profile": {"V": True}},
     "profile"),
])
def test_a_number_is_a_json_number(model, body, field):
    """The fuzzer's find: lax pydantic answered `"horizon": true` as horizon 1.0 (a 200)."""
    import importlib

    from pydantic import ValidationError

    module, name = model.split(":")
    with pytest.raises(ValidationError) as caught:
        getattr(importlib.import_module(module), name).model_validate(body)
    assert caught.value.errors()[0]["loc"][0] == field
