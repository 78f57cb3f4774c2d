"""Prometheus `endpoint` labels from the route table, not from the raw request path.

    request ─► Starlette ─► RouteLabelledMetrics ─► (BentoML's RunnerTrafficMetricsMiddleware
                  │             sees path = route_label(scope): "/predict", "/assets", or
                  │             UNMATCHED for anything the router has no route for)
                  │          ─► _RealScope ─► OpenTelemetry, timeout, RequestGuard, ... routes
                  │                          (every inner layer sees the request's real path)

Why: BentoML 1.4's traffic metrics middleware (bentoml._internal.server.http.instruments,
RunnerTrafficMetricsMiddleware, the outermost middleware of a service's app) labels every
counter, histogram and gauge with `endpoint=scope["path"]`. Each distinct path, even a 401
on a made-up one, added a ~3.8 KB label set to /metrics for good (500 random paths: 202 KB
-> 2.08 MB, in every worker's multiprocess file), and a `%00` path put a raw NUL into the
exposition. BentoML has no setting for that label, and the middleware runs outside every
`add_asgi_middleware` one, so a service middleware cannot change what it sees. The one
place is the class itself: `install()` makes BentoML build this subclass instead (its
ServiceAppFactory imports the class by name from that module when it builds the app), which
only rewrites the path it labels with. Everything it measures stays BentoML's.
"""

from __future__ import annotations

from typing import Any

from bentoml._internal.server.http.instruments import RunnerTrafficMetricsMiddleware

#: The label of every request no route matches (unknown paths, probes, typos).
UNMATCHED = "<unmatched>"
#: Where the labelled copy of the scope keeps the real one for the layers inside.
_REAL_SCOPE = "twinops.real_scope"


def route_label(scope: dict[str, Any], cache: dict[str, str] | None = None) -> str:
    """The path of the route of the app's router (`scope["app"]`, set by Starlette) that
    matches this request, else UNMATCHED. A Mount is labelled by its prefix, so a static
    folder is one label however many files are asked for. `cache` holds exact hits only
    (path == route path), so it is bounded by the number of routes."""
    path = scope.get("path", "")
    if cache is not None and path in cache:
        return cache[path]
    from starlette.routing import Match

    routes = getattr(getattr(scope.get("app"), "router", None), "routes", ())
    for route in routes:
        try:
            match, _ = route.matches(scope)
        except Exception:  # noqa: BLE001 - a route that cannot judge a path is no match
            continue
        if match is not Match.NONE:
            label = getattr(route, "path", "") or "/"
            if cache is not None and label == path:
                cache[path] = label
            return label
    return UNMATCHED


class _RealScope:
    """The app inside the metrics middleware: hands on the request's real scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope.get(_REAL_SCOPE, scope), receive, send)


class RouteLabelledMetrics(RunnerTrafficMetricsMiddleware):
    """BentoML's traffic metrics, labelled by route (module docstring)."""

    def __init__(self, app: Any, **options: Any) -> None:
        super().__init__(_RealScope(app), **options)
        self._labels: dict[str, str] = {}

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            label = route_label(scope, self._labels)
            if label != scope.get("path"):
                scope = {**scope, "path": label, _REAL_SCOPE: scope}
        await super().__call__(scope, receive, send)


def install() -> None:
    """Make BentoML build RouteLabelledMetrics for this process's service app. Idempotent;
    called where the service declares its middlewares (serving.service), which the worker
    imports before it builds the app."""
    from bentoml._internal.server.http import instruments

    instruments.RunnerTrafficMetricsMiddleware = RouteLabelledMetrics
