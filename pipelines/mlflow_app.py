"""`mlflow server --app-name twinops-auth`: MLflow's basic-auth app plus one rule, a run's
user is the authenticated user.

    request ─► basic-auth `_before_request` (who is it? may they?) ─► run_user_rule ─► handler
                                                                        │
        runs/create: user_id empty / "unknown" ─► filled with the authenticated user
                     user_id or tag mlflow.user naming someone else ─► 403 naming the field
        runs/set-tag, runs/log-batch: tag mlflow.user naming someone else ─► 403
        runs/delete-tag: tag mlflow.user ─► 403

Why: MLflow takes a run's `user_id` from the client (the `mlflow.user` tag, itself
MLFLOW_TRACKING_USERNAME or the login name), so a trainer could record a run as
"reviewer" and approve their own model. With this rule `run.info.user_id` is the identity
the server authenticated, and the four-eyes check (pipelines/review.py) can trust it.
UpdateRun cannot change `user_id`, so the create is the only door.

Registered in pyproject.toml under `[project.entry-points."mlflow.app"]`; `mlflow server`
finds it by name once the twinops package is installed (`uv sync`).
"""

from __future__ import annotations

#: The run tag MLflow's client fills with the user, and the run's UI shows.
USER_TAG = "mlflow.user"
#: What MLflow's client sends as user_id when it has none (MlflowClient.create_run, no tag).
_NO_USER = ("", "unknown")


def create_app(app=None):
    """The basic-auth app (Flask, or FastAPI around it under uvicorn) with `run_user_rule`
    run after basic-auth's own before-request hook, so the user is authenticated by then."""
    from mlflow.server import app as mlflow_flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    flask_app = mlflow_flask_app if app is None else app
    served = basic_auth_app(flask_app)
    # Flask runs before-request hooks in registration order and stops at the first that
    # answers: basic-auth's 401/403 come first, ours only sees authenticated requests.
    flask_app.before_request(run_user_rule)
    return served


def _refuse(message: str):
    from flask import make_response

    return make_response({"error_code": "PERMISSION_DENIED", "message": message}, 403)


def _authenticated_user() -> str | None:
    from flask import g, request

    user = g.get("mlflow_authenticated_user")
    if user is None and request.authorization is not None:
        user = request.authorization.username
    return user


def _tag_value(tags, key: str):
    """Value of `key` in a request's [{key, value}, ...], None if absent or malformed."""
    for tag in tags if isinstance(tags, list) else []:
        if isinstance(tag, dict) and tag.get("key") == key:
            return tag.get("value")
    return None


def run_user_rule():
    """None (go on) or the 403 of a request that would record a run under another user."""
    from flask import request

    if request.method != "POST" or "/mlflow/runs/" not in request.path:
        return None
    action = request.path.rsplit("/mlflow/runs/", 1)[1]
    if action not in ("create", "set-tag", "log-batch", "delete-tag"):
        return None
    user = _authenticated_user()
    # The handler parses the same body with get_json(force=True, silent=True); Werkzeug caches
    # that dict, so filling user_id below reaches the handler without re-encoding the body.
    body = request.get_json(force=True, silent=True)
    if user is None or not isinstance(body, dict):
        return None  # unauthenticated routes are basic-auth's; a malformed body MLflow's 400
    if action == "create":
        return _create(body, user)
    if action == "set-tag":
        if body.get("key") == USER_TAG and body.get("value") != user:
            return _refuse(f"value: the {USER_TAG} tag must be the authenticated user "
                           f"{user!r}, not {body.get('value')!r}")
        return None
    if action == "log-batch":
        value = _tag_value(body.get("tags"), USER_TAG)
        if value is not None and value != user:
            return _refuse(f"tags[{USER_TAG}]: must be the authenticated user {user!r}, "
                           f"not {value!r}")
        return None
    if body.get("key") == USER_TAG:  # delete-tag
        return _refuse(f"key: the {USER_TAG} tag records who created the run; it cannot "
                       "be deleted")
    return None


def _create(body: dict, user: str):
    user_id = body.get("user_id")
    if user_id in (None, *_NO_USER):
        body["user_id"] = user_id = user
    if user_id != user:
        return _refuse(f"user_id: a run is recorded under the authenticated user {user!r}, "
                       f"not {user_id!r}")
    value = _tag_value(body.get("tags"), USER_TAG)
    tags = body.get("tags")
    if value is None and isinstance(tags, list | None):  # other shapes: MLflow's 400
        body["tags"] = [*(tags or []), {"key": USER_TAG, "value": user}]
    elif value != user:
        return _refuse(f"tags[{USER_TAG}]: must be the authenticated user {user!r}, "
                       f"not {value!r}")
    return None
