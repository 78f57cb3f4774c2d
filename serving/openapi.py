"""The served OpenAPI document made true: the answers, shapes and limits the server really has.

    TwinService.openapi_spec (BentoML) ─► openapi30 (serving.health: 3.0's dialect)
        ─► declare_contract(document, settings):
           ├─ every route: requestBody required; 200 plus 400 401 403 413 415 and the
           │  route's own 404 / 422 / 503 (ROUTE_ERRORS), each {"error", "detail"?: [{loc, msg}]}
           ├─ limits from the settings: asset_ids ≤ max_batch, rows ≤ max_rows, a window's
           │  readings ≥ the served types' history, body ≤ max_body_bytes (in words: JSON
           │  Schema cannot count bytes), explain: true ≤ MAX_EXPLAINED ids
           ├─ an event names `cycle` or `timestamp` (anyOf)
           └─ API keys as security schemes when auth is on (bearer or X-API-Key)

Why rewrite rather than annotate the routes: BentoML 1.4 writes the same three answers
(400/404/500) for every route, with `detail` a string, whatever the route does; its
`@bentoml.api` has no way to declare other answers, and the limits that matter are
configuration read at start, not the static models' ceilings. A 500 is not declared: the
server never means to answer one, and a fuzzer must call it a failure.
"""

from __future__ import annotations

import copy
from typing import Any

ERROR = "Error"
ERROR_SCHEMAS = {
    ERROR: {
        "type": "object", "required": ["error"],
        "description": "Every error answer of the service (serving.errors, serving.guard). "
                       "`detail` lists the fields at fault; the guard's answers (401, 403, "
                       "413, 415, bad JSON) have only `error`.",
        "properties": {"error": {"type": "string"},
                       "detail": {"type": "array",
                                  "items": {"$ref": "#/components/schemas/ErrorDetail"}}},
    },
    "ErrorDetail": {
        "type": "object", "required": ["loc", "msg"],
        "properties": {"loc": {"type": "array", "description": "Path to the field at fault.",
                               "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
                       "msg": {"type": "string"}},
    },
}
#: Answers of every guarded route, and why.
COMMON_ERRORS = {
    "400": "Invalid request: a body that is not a JSON object, nests too deep, or does not "
           "match the schema; `detail[].loc` names the field.",
    "401": "Missing or invalid API key (when API keys are on).",
    "403": "The API key's scopes do not include this route.",
    "413": "Body larger than the configured limit (serving.max_body_bytes).",
    "415": "Content-Type other than application/json.",
}
#: What else each route answers (from the ApiError / WhatIfError raises of its code).
ROUTE_ERRORS = {
    "/predict": {"503": "The online feature store is unavailable."},
    "/predict_window": {"503": "No model of the asset's type is being served."},
    "/ingest": {"422": "Every reading was rejected; nothing stored (`detail` says why).",
                "503": "Readings stored, but their online features could not be pushed."},
    "/feedback": {"422": "Every event was rejected; nothing stored."},
    "/fleet/risk": {},
    "/recommend": {},
    "/whatif": {"404": "Unknown asset, or one without stored readings or features.",
                "422": "The asset's readings cannot support an estimate.",
                "503": "No model of the asset's type, or the simulator busy / over budget."},
}

_JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
#: The probes' answers (serving.health; /livez and /metrics are BentoML's, plain text).
PROBES = {
    "/healthz": {"200": {"description": "Serving: the model of each type.",
                         "content": _JSON_OBJECT},
                 "503": {"description": "Starting, or the service failed.",
                         "content": _JSON_OBJECT}},
    "/readyz": {"200": {"description": "Model loaded and the feature store answers.",
                        "content": _JSON_OBJECT},
                "503": {"description": "Not ready; `reason` or `feature_store` says why.",
                        "content": _JSON_OBJECT}},
    "/livez": {"200": {"description": "The process is alive.",
                       "content": {"text/plain": {"schema": {"type": "string"}}}}},
    "/metrics": {"200": {"description": "Prometheus metrics.",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
}


def declare_contract(document: dict[str, Any], settings,
                     served: list[str] | None = None) -> None:
    """Rewrite `document` (3.0 dialect already) in place to say what the server answers;
    `served`: the asset types with a model being served (default: every declared type)."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in ("InvalidArgument", "NotFound", "InternalServerError"):
        schemas.pop(name, None)  # BentoML's, with `detail` a string: not what is sent
    schemas.update(ERROR_SCHEMAS)
    serving = settings.serving
    auth = serving.auth_enabled
    if auth:
        schemas_sec = document["components"].setdefault("securitySchemes", {})
        schemas_sec["bearer"] = {"type": "http", "scheme": "bearer",
                                 "description": "Authorization: Bearer <key>"}
        schemas_sec["apiKey"] = {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    for path, item in document.get("paths", {}).items():
        for operation in item.values():
            if path in ROUTE_ERRORS:
                _route(operation, path, serving, auth)
            else:
                operation["security"] = []  # probes are open (serving.guard.OPEN_PATHS)
                operation["responses"] = PROBES.get(path, operation["responses"])
    types = settings.declared_types()
    _limits(document, settings, [types[n] for n in (served or sorted(types))])


def _route(operation: dict, path: str, serving, auth: bool) -> None:
    operation["requestBody"]["required"] = True
    operation["requestBody"]["description"] = (
        f"A JSON object of at most {serving.max_body_bytes} bytes (serving.max_body_bytes).")
    responses = {"200": operation["responses"]["200"]}
    errors = {**COMMON_ERRORS, **ROUTE_ERRORS[path]}
    if not auth:  # no keys asked for, none refused
        del errors["401"], errors["403"]
    for status in sorted(errors):
        responses[status] = {"description": errors[status], "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR}"}}}}
    operation["responses"] = responses
    if auth:
        operation["security"] = [{"bearer": []}, {"apiKey": []}]


def _limits(document: dict, settings, served: list) -> None:
    """The configured limits, and the served asset types (their names, their operating
    settings and ranges for /whatif), where a request's schema can say them."""
    from features.transforms import history_length
    from serving.schemas import MAX_EXPLAINED

    serving = settings.serving
    paths = document["paths"]

    def body(path: str) -> dict:
        return paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]

    predict = body("/predict")
    ids = predict["properties"]["asset_ids"]
    ids["maxItems"] = min(ids["maxItems"], serving.max_batch)
    if ids["maxItems"] > MAX_EXPLAINED:
        # explain: true takes fewer ids than a plain call. Two whole request objects, not an
        # anyOf of fragments: a client generator makes two usable models of them.
        plain, explained = copy.deepcopy(predict), copy.deepcopy(predict)
        plain["properties"]["explain"]["enum"] = [False]
        explained["properties"]["explain"].update(enum=[True], default=True)
        explained["properties"]["asset_ids"]["maxItems"] = MAX_EXPLAINED
        explained["required"] = [*explained["required"], "explain"]
        schemas = document["components"]["schemas"]
        for name, schema in (("PredictRequest", plain), ("ExplainedPredictRequest", explained)):
            schemas[name] = {**schema, "title": name}
        paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] = {
            "anyOf": [{"$ref": "#/components/schemas/PredictRequest"},
                      {"$ref": "#/components/schemas/ExplainedPredictRequest"}]}
    for path, field in (("/predict_window", "readings"), ("/ingest", "readings"),
                        ("/feedback", "events")):
        rows = body(path)["properties"][field]
        rows["maxItems"] = min(rows["maxItems"], serving.max_rows)
    for path in ("/predict_window", "/fleet/risk"):
        field = body(path)["properties"]["asset_type"]
        # 3.0: a nullable enum lists null (else null is outside it)
        field["enum"] = [t.name for t in served] + ([None] if field.get("nullable") else [])
    windows = [history_length(t.window) for t in served]
    readings = body("/predict_window")["properties"]["readings"]
    readings["minItems"] = max(readings.get("minItems", 1), min(windows))
    readings["description"] += (f" At least {min(windows)} readings (the asset type's "
                                "history: 3 × its window), all of one asset.")
    event = document["components"]["schemas"]["Event"]
    event["anyOf"] = [{"required": ["cycle"],
                       "properties": {"cycle": {"type": "integer", "minimum": 1}}},
                      {"required": ["timestamp"],
                       "properties": {"timestamp": {"type": "string", "format": "date-time"}}}]
    profile = body("/whatif")["properties"]["profile"]
    ranges: dict[str, dict] = {}  # a setting of several types: the widest range
    for kind in served:
        for ch in kind.settings:
            known = ranges.setdefault(ch.name, {"type": "number", "minimum": ch.min,
                                                "maximum": ch.max})
            for bound, pick, value in (("minimum", min, ch.min), ("maximum", max, ch.max)):
                known[bound] = None if None in (known[bound], value) else pick(known[bound],
                                                                               value)
    profile["properties"] = {name: {k: v for k, v in r.items() if v is not None}
                             for name, r in ranges.items()}
    profile["additionalProperties"] = False  # the server's check: a declared setting
    profile["maxProperties"] = min(profile.get("maxProperties", len(ranges)), len(ranges))
