"""/metrics labels come from the route table: an unknown path is one label, never itself."""

from __future__ import annotations

import asyncio
from unittest import mock

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from serving.route_labels import UNMATCHED, RouteLabelledMetrics, install, route_label


def _app() -> Starlette:
    async def ok(_request):
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/predict", ok, methods=["POST"]), Route("/metrics", ok),
                             Mount("/assets", app=PlainTextResponse("static"))])


def scope(app, path, method="GET"):
    return {"type": "http", "method": method, "path": path, "root_path": "", "app": app,
            "query_string": b"", "headers": []}


def test_known_routes_keep_their_path_and_everything_else_is_one_label():
    app = _app()
    cache: dict[str, str] = {}
    assert route_label(scope(app, "/predict", "POST"), cache) == "/predict"
    assert route_label(scope(app, "/predict", "GET"), cache) == "/predict"  # 405, still it
    assert route_label(scope(app, "/assets/x/y.js"), cache) == "/assets"
    for path in ("/nope", "/predict/", "/a\x00b", "/" + "z" * 5000, ""):
        assert route_label(scope(app, path), cache) == UNMATCHED
    assert cache == {"/predict": "/predict"}  # exact hits only: bounded by the routes
    assert route_label({"type": "http", "path": "/predict"}) == UNMATCHED  # no app, no route


def test_metrics_see_the_label_and_the_app_inside_sees_the_real_path():
    seen = []

    async def inner(s, receive, send):
        seen.append(s["path"])
        await send({"type": "http.response.start", "status": 401, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = RouteLabelledMetrics(inner)
    mw._is_setup = True  # BentoML's own metric objects need its DI container: stand-ins
    for name in ("metrics_request_total", "metrics_request_duration",
                 "metrics_request_in_progress", "metrics_last_request_timestamp"):
        setattr(mw, name, mock.MagicMock())
    app = _app()

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(_message):
        pass

    for path in ("/x\x00y", "/predict"):
        asyncio.run(mw(scope(app, path), receive, send))
    assert seen == ["/x\x00y", "/predict"]
    endpoints = [c.kwargs["endpoint"] for c in mw.metrics_request_total.labels.call_args_list]
    assert endpoints == [UNMATCHED, "/predict"]


def test_install_makes_bentoml_build_the_labelled_middleware():
    from bentoml._internal.server.http import instruments

    original = instruments.RunnerTrafficMetricsMiddleware
    try:
        install()
        install()
        assert instruments.RunnerTrafficMetricsMiddleware is RouteLabelledMetrics
    finally:
        instruments.RunnerTrafficMetricsMiddleware = original
