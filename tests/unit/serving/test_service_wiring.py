"""The BentoML service definition (no server): routes, config, /healthz middleware."""

from __future__ import annotations

import asyncio
import json

from serving.guard import RequestGuard
from serving.health import HealthzMiddleware


def call(mw, method="GET", path="/healthz"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(msg):
        sent.append(msg)

    asyncio.run(mw({"type": "http", "method": method, "path": path}, receive, send))
    return sent


def test_healthz_answers_json_with_model_version(monkeypatch):
    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        raise AssertionError("healthz must not reach the app")

    mw = HealthzMiddleware(app)
    monkeypatch.setattr(
        HealthzMiddleware,
        "_health",
        staticmethod(lambda: (200, {"status": "ok", "model_version": "7"})),
    )
    start, body = call(mw)
    assert start["status"] == 200
    assert json.loads(body["body"]) == {"status": "ok", "model_version": "7"}
    assert (b"content-type", b"application/json") in start["headers"]


def test_other_paths_pass_through():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope["method"], scope["path"]))

    mw = HealthzMiddleware(app)
    call(mw, "POST", "/predict")
    call(mw, "POST", "/healthz")
    call(mw, "GET", "/livez")
    assert seen == [("POST", "/predict"), ("POST", "/healthz"), ("GET", "/livez")]


def test_healthz_before_the_service_exists_is_503():
    status, body = HealthzMiddleware._health()  # no service instantiated in this process
    assert status == 503 and body["status"] == "starting"


def test_service_definition():
    from serving.service import TwinService

    assert set(TwinService.apis) == {"predict", "predict_window", "ingest", "feedback",
                                     "fleet_risk", "recommend", "whatif"}
    api = TwinService.apis["predict"]
    assert api.route == "/predict"
    assert set(api.input_spec.model_fields) == {"asset_ids", "horizon", "explain"}
    assert TwinService.config["logging"]["access"]["enabled"] is False
    assert (HealthzMiddleware, {}) in TwinService.middlewares
    assert (RequestGuard, {}) in TwinService.middlewares
    from serving.shutdown import DrainMiddleware

    assert TwinService.middlewares[0] == (DrainMiddleware, {})  # outermost: every response


def test_the_openapi_document_is_valid_openapi_3_0():
    from openapi_spec_validator import OpenAPIV30SpecValidator

    from serving.health import openapi_document

    status, document = openapi_document()
    assert status == 200 and document["openapi"].startswith("3.0")
    errors = [e.message[:200] for e in OpenAPIV30SpecValidator(document).iter_errors()]
    assert errors == []
    horizon = document["components"]["schemas"]["PredictRequestIODescriptor"]["properties"][
        "horizon"]
    assert (horizon["minimum"], horizon["exclusiveMinimum"], horizon["nullable"]) == (
        0, True, True)
    assert {"/predict", "/predict_window", "/ingest", "/feedback", "/fleet/risk",
            "/recommend", "/whatif"} <= set(document["paths"])


def test_openapi30_rewrites_the_2020_12_forms():
    from serving.health import openapi30

    schema = {"properties": {
        "a": {"anyOf": [{"type": "number", "exclusiveMinimum": 0}, {"type": "null"}]},
        "b": {"anyOf": [{"$ref": "#/x"}, {"type": "null"}], "default": None},
        "c": {"const": "x"}, "d": {"type": "object", "propertyNames": {"maxLength": 3}}}}
    openapi30(schema)
    a, b, c, d = (schema["properties"][k] for k in "abcd")
    assert a == {"type": "number", "minimum": 0, "exclusiveMinimum": True, "nullable": True}
    assert b["anyOf"] == [{"$ref": "#/x"}] and b["nullable"] is True
    assert c == {"enum": ["x"]} and "propertyNames" not in d
