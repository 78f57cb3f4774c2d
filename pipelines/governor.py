"""`twinops govern`: the one process that holds the service identity and makes review decisions.

    twinops review approve 3 (reviewer's MLflow credentials) ──HTTP basic──► governor
        ─► verify the credentials against the tracking server (pipelines.access)
        ─► pipelines.review.approve(..., reviewer=<verified identity>) as the service identity
           (copy into the serving model, `champion`, audit entry) ─► JSON answer

Why a process of its own: whoever holds the service identity's password can write the
serving model and the audit. Trainers and reviewers never see it; they hold their own
MLflow credentials, which the governor checks on every call (a wrong password is a 401
from the tracking server, so it is refused here too). The review rules themselves live in
pipelines.review; this module only carries requests to them.
Why Starlette and uvicorn: both come with BentoML already, and four routes need no more.
Decisions are applied one at a time (a lock): they are rare, and the audit appends in order.
"""

from __future__ import annotations

import base64
import logging
import threading

logger = logging.getLogger("twinops.governor")

ACTIONS = ("propose", "approve", "reject", "rollback")
_FIELDS = {"propose": {"version": str, "decide": bool},
           "approve": {"version": str, "comment": str},
           "reject": {"version": str, "comment": str},
           "rollback": {"comment": str}}


class GovernorError(RuntimeError):
    """The governor refused a request; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# ------------------------------------------------------------------ client side
def call(settings, action: str, body: dict) -> dict:
    """Send one review action to the governor with this user's MLflow credentials."""
    import os

    import httpx

    from pipelines.review import ReviewError

    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not user or not password:
        raise ReviewError("review decisions go to the governor with your own MLflow "
                          "credentials: set MLFLOW_TRACKING_USERNAME and "
                          "MLFLOW_TRACKING_PASSWORD")
    url = f"{settings.review.governor_url.rstrip('/')}/v1/review/{action}"
    try:
        # a proposal evaluates both models: minutes on a large fleet
        r = httpx.post(url, json={"asset_type": settings.asset_type, **body},
                       auth=(user, password), timeout=900)
    except httpx.HTTPError as exc:
        raise ReviewError(f"the governor at {settings.review.governor_url} did not answer: "
                          f"{exc}") from exc
    if r.status_code != 200:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        raise ReviewError(f"governor refused ({r.status_code}): {detail}")
    return r.json()


# ------------------------------------------------------------------ server side
def _caller(header: str | None, tracking_uri: str):
    """The caller's Identity, verified against the tracking server; GovernorError 401."""
    from pipelines.access import AccessError, ServerUnavailable, verify_credentials
    from training.identity import Identity

    if not header or not header.lower().startswith("basic "):
        raise GovernorError(401, "send your MLflow user name and password (HTTP basic auth)")
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError) as exc:
        raise GovernorError(401, "malformed basic authorization header") from exc
    try:
        return Identity(verify_credentials(tracking_uri, user, password), authenticated=True)
    except ServerUnavailable as exc:
        raise GovernorError(503, str(exc)) from exc
    except AccessError as exc:
        raise GovernorError(401, str(exc)) from exc


def _arguments(action: str, payload) -> dict:
    """The request body checked field by field (a 422 names the field)."""
    if not isinstance(payload, dict):
        raise GovernorError(422, "body: expected a JSON object")
    out = {}
    for name, kind in _FIELDS[action].items():
        if name not in payload:
            if name == "version":
                raise GovernorError(422, "version: field required")
            continue
        if not isinstance(payload[name], kind):
            raise GovernorError(422, f"{name}: expected {kind.__name__}")
        out[name] = payload[name]
    unknown = set(payload) - set(_FIELDS[action]) - {"asset_type"}
    if unknown:
        raise GovernorError(422, f"{sorted(unknown)[0]}: unknown field")
    return out


def decide(base, action: str, payload, authorization: str | None) -> dict:
    """Apply one request as the service identity (the body of every route)."""
    from pipelines import review
    from pipelines.review import ReviewError

    caller = _caller(authorization, base.tracking_uri)
    kind = payload.get("asset_type") if isinstance(payload, dict) else None
    if kind is not None and not isinstance(kind, str):
        raise GovernorError(422, "asset_type: expected str")
    try:
        settings = base.for_type(kind) if kind else base
    except (KeyError, ValueError) as exc:
        raise GovernorError(422, f"asset_type: {exc}") from exc
    settings = settings.model_copy(update={"review": settings.review.model_copy(
        update={"governor_url": None})})  # this process is the governor: act, do not forward
    args = _arguments(action, payload)
    logger.info("%s %s by %s", action, args.get("version", ""), caller.name)
    try:
        if action == "propose":
            return review.propose(settings, args["version"], decide=args.get("decide", True),
                                  requester=caller)
        if action == "approve":
            return review.approve(settings, args["version"], args.get("comment", ""),
                                  reviewer=caller)
        if action == "reject":
            return review.reject(settings, args["version"], args.get("comment", ""),
                                 reviewer=caller)
        return review.rollback(settings, args.get("comment", ""), reviewer=caller)
    except ReviewError as exc:
        raise GovernorError(403, str(exc)) from exc
    except LookupError as exc:
        raise GovernorError(404, str(exc)) from exc


def make_app(settings):
    """The governor's Starlette app for `settings` (the service identity's environment)."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    lock = threading.Lock()

    def locked(action, payload, header):
        with lock:
            return decide(settings, action, payload, header)

    async def route(request: Request) -> JSONResponse:
        action = request.path_params["action"]
        if action not in ACTIONS:
            return JSONResponse({"detail": f"action: one of {', '.join(ACTIONS)}"}, 404)
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"detail": "body: not valid JSON"}, 400)
        try:
            result = await run_in_threadpool(locked, action, payload,
                                             request.headers.get("authorization"))
        except GovernorError as exc:
            headers = {"WWW-Authenticate": 'Basic realm="twinops"'} if exc.status == 401 else None
            return JSONResponse({"detail": str(exc)}, exc.status, headers=headers)
        return JSONResponse(result)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/v1/review/{action}", route, methods=["POST"]),
                             Route("/healthz", health, methods=["GET"])])


def serve(settings, host: str, port: int) -> None:
    """Run the governor until stopped (the process environment holds the service identity)."""
    import os

    import uvicorn

    from pipelines.review import governed

    if not governed(settings):
        raise SystemExit("twinops govern needs a tracking server with auth "
                         "(TWINOPS_MLFLOW_TRACKING_URI=http://...); the embedded store "
                         "decides in-process")
    if not os.environ.get("MLFLOW_TRACKING_USERNAME"):
        raise SystemExit("twinops govern runs as the service identity: set "
                         "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to its account")
    uvicorn.run(make_app(settings), host=host, port=port, log_level="info")
