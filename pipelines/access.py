"""Identities and grants of the review workflow on an MLflow tracking server
(`mlflow server --app-name twinops-auth`, docs/operations.md#mlflow-tracking-server).

    setup(settings, service=, trainers=, reviewers=, viewers=)      (admin credentials)
        ├─ users that do not exist yet ─► created (passwords given)
        ├─ candidates model, serving model, reviews experiment missing ─► created by the
        │      SERVICE (MLflow makes the creator MANAGE); training experiment by the admin
        ├─ every cell of MATRIX ─► granted / changed / revoked until it holds exactly
        └─ REVIEWERS_TAG on the serving model ─► the reviewer list
    show(settings)            who holds what on the four resources
    reviewers(settings)       the reviewer list, read from the serving model's tag
    verify_credentials(uri, user, password)    the user name the server authenticates

Why the service creates its resources: MLflow gives the creator MANAGE (mlflow#11497), and
MANAGE lets one grant and revoke; a trainer who created the serving model could grant
themselves a reviewer. Why a tag for the reviewers: only MANAGE/EDIT holders of the serving
model (the service, the admin) can write it, and every reader of the model sees it.
Idempotent: a second run with the same arguments changes nothing and says so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

REVIEWERS_TAG = "twinops.reviewers"
ROLES = ("trainer", "reviewer", "service", "viewer")
#: Env var holding the password of user `name` (only needed when setup creates the user,
#: and for the service when setup creates the service's resources).
PASSWORD_ENV = "TWINOPS_ACCESS_PASSWORD_{}"
_PRIORITY = {"NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}
#: resource -> role -> permission; a role not named holds nothing (docs/operations.md).
MATRIX = {
    "training experiment": {"trainer": "EDIT", "reviewer": "READ", "service": "READ"},
    "candidates model": {"trainer": "EDIT", "reviewer": "READ", "service": "MANAGE"},
    "serving model": {"trainer": "READ", "reviewer": "READ", "service": "MANAGE"},
    "reviews experiment": {"trainer": "READ", "reviewer": "READ", "service": "MANAGE"},
}


class AccessError(RuntimeError):
    """Setup cannot reach the requested state, or credentials were refused."""


class ServerUnavailable(AccessError):
    """The tracking server did not answer: nothing is known about the credentials."""


@dataclass(frozen=True)
class Resource:
    label: str  # a MATRIX key
    kind: str  # "experiment" | "registered_model"
    name: str  # experiment or model name
    created_by_service: bool


def resources(settings) -> list[Resource]:
    return [
        Resource("training experiment", "experiment", settings.experiment_name, False),
        Resource("candidates model", "registered_model", settings.candidates_model_name, True),
        Resource("serving model", "registered_model", settings.model_name, True),
        Resource("reviews experiment", "experiment", settings.reviews_experiment_name, True),
    ]


def password_env(name: str) -> str:
    """TWINOPS_ACCESS_PASSWORD_<NAME>: upper case, anything but letters and digits as _."""
    return PASSWORD_ENV.format(re.sub(r"[^A-Za-z0-9]", "_", name).upper())


def passwords_from_env(names: Iterable[str]) -> dict[str, str]:
    return {n: os.environ[password_env(n)] for n in names if os.environ.get(password_env(n))}


def desired_grants(*, service: str, trainers: Iterable[str] = (),
                   reviewers: Iterable[str] = (), viewers: Iterable[str] = ()
                   ) -> dict[str, dict[str, str]]:
    """user -> resource label -> permission ("NO_PERMISSIONS" where the matrix has none). A
    user in two roles (a trainer who reviews others' models) holds the higher of the two."""
    roles: dict[str, set[str]] = {}
    for role, names in (("service", [service]), ("trainer", trainers),
                        ("reviewer", reviewers), ("viewer", viewers)):
        for name in names:
            if not name or not name.strip():
                raise AccessError(f"--{role}: a user name cannot be empty")
            roles.setdefault(name, set()).add(role)
    if len(roles[service]) > 1:
        raise AccessError(f"--service: {service!r} cannot also be a "
                          f"{'/'.join(sorted(roles[service] - {'service'}))}")
    for name, held in roles.items():
        if "viewer" in held and len(held) > 1:
            raise AccessError(f"--viewer: {name!r} cannot also be a "
                              f"{'/'.join(sorted(held - {'viewer'}))}")
    return {name: {label: max((MATRIX[label].get(r, "NO_PERMISSIONS") for r in held),
                              key=_PRIORITY.__getitem__)
                   for label in MATRIX}
            for name, held in roles.items()}


# ------------------------------------------------------------------ server calls
def _server(settings) -> str:
    uri = settings.tracking_uri
    if not uri.startswith(("http://", "https://")):
        raise AccessError(f"identities and grants need an MLflow tracking server; the "
                          f"tracking URI is {uri!r} (set TWINOPS_MLFLOW_TRACKING_URI)")
    return uri.rstrip("/")


def _call(uri: str, method: str, path: str, *, auth=None, **kwargs) -> dict:
    """One REST call, with `auth` (user, password) or else the environment's credentials
    (MLFLOW_TRACKING_USERNAME/PASSWORD, as every MLflow client call here)."""
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request, verify_rest_response

    creds = (MlflowHostCreds(uri, username=auth[0], password=auth[1]) if auth
             else get_default_host_creds(uri))
    response = verify_rest_response(http_request(creds, path, method, **kwargs), path)
    return response.json() if response.content else {}


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST"


def _user_exists(uri: str, name: str) -> bool:
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    try:
        AuthServiceClient(uri).get_user(name)
        return True
    except MlflowException as exc:
        if _missing(exc):
            return False
        raise


def _resource_id(settings, resource: Resource) -> str | None:
    """Experiment id / model name of `resource` on the server, None if it does not exist."""
    from mlflow.exceptions import MlflowException

    from training.registry import _client

    client = _client(settings)
    if resource.kind == "experiment":
        exp = client.get_experiment_by_name(resource.name)
        if exp is not None and exp.lifecycle_stage != "active":
            raise AccessError(f"experiment {resource.name!r} is deleted: restore it "
                              "(mlflow experiments restore) or purge it, then run setup again")
        return None if exp is None else exp.experiment_id
    try:
        return client.get_registered_model(resource.name).name
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise


def _create(settings, resource: Resource, auth) -> str:
    """Create `resource` as `auth` (None: the environment's admin); its id."""
    uri = _server(settings)
    if resource.kind == "experiment":
        return _call(uri, "POST", "/api/2.0/mlflow/experiments/create",
                     auth=auth, json={"name": resource.name})["experiment_id"]
    _call(uri, "POST", "/api/2.0/mlflow/registered-models/create", auth=auth,
          json={"name": resource.name})
    return resource.name


def _permission(uri: str, user: str, kind: str, resource_id: str) -> str:
    from mlflow.server.auth.client import AuthServiceClient

    return AuthServiceClient(uri).get_user_permission(user, kind, resource_id).permission


def _set_permission(uri: str, user: str, kind: str, resource_id: str, current: str,
                    wanted: str) -> None:
    """Make `user`'s grant `wanted` (revoke first: MLflow's grant refuses an existing one)."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    admin = AuthServiceClient(uri)
    if current != "NO_PERMISSIONS":
        try:
            admin.revoke_user_permission(user, kind, resource_id)
        except MlflowException as exc:
            if not _missing(exc):
                raise
            if wanted == "NO_PERMISSIONS":  # nothing granted: the server's default gives it
                raise AccessError(
                    f"{user!r} holds {current} on {kind} {resource_id!r} through the server's "
                    "default_permission; set default_permission = NO_PERMISSIONS in the "
                    "basic-auth ini (docs/operations.md#mlflow-tracking-server)") from exc
    if wanted != "NO_PERMISSIONS":
        admin.grant_user_permission(user, kind, resource_id, wanted)


# ------------------------------------------------------------------ the commands
def setup(settings, *, service: str, trainers: Iterable[str] = (),
          reviewers: Iterable[str] = (), viewers: Iterable[str] = (),
          passwords: Mapping[str, str] | None = None) -> list[str]:
    """Bring the server to the MATRIX for these users (run with the admin's credentials in
    MLFLOW_TRACKING_USERNAME/PASSWORD); returns what it changed, [] when nothing."""
    from mlflow.server.auth.client import AuthServiceClient

    uri = _server(settings)
    trainers, reviewers, viewers = list(trainers), list(reviewers), list(viewers)
    wanted = desired_grants(service=service, trainers=trainers, reviewers=reviewers,
                            viewers=viewers)
    passwords = dict(passwords or {})
    changes: list[str] = []
    for name in wanted:
        if _user_exists(uri, name):
            continue
        if not passwords.get(name):
            raise AccessError(f"user {name!r} does not exist and has no password: set "
                              f"{password_env(name)}")
        AuthServiceClient(uri).create_user(name, passwords[name])
        changes.append(f"created user {name}")
    if passwords.get(service):  # a wrong one would fail half-way, at the first create
        verify_credentials(uri, service, passwords[service])
    ids: dict[str, str] = {}
    for resource in resources(settings):
        resource_id = _resource_id(settings, resource)
        if resource_id is None:
            service_auth = (service, passwords[service]) if passwords.get(service) else None
            if resource.created_by_service and service_auth is None:
                raise AccessError(f"{resource.label} {resource.name!r} is missing and is "
                                  f"created by the service: set {password_env(service)}")
            auth = service_auth if resource.created_by_service else None
            resource_id = _create(settings, resource, auth)
            changes.append(f"created {resource.label} {resource.name}"
                           + (f" as {service}" if auth else ""))
        ids[resource.label] = resource_id
    for resource in resources(settings):
        for user, grants in wanted.items():
            current = _permission(uri, user, resource.kind, ids[resource.label])
            if current != grants[resource.label]:
                _set_permission(uri, user, resource.kind, ids[resource.label], current,
                                grants[resource.label])
                changes.append(f"{user} on {resource.label}: {current} -> "
                               f"{grants[resource.label]}")
    tag = ",".join(sorted(set(reviewers)))
    if _reviewers_tag(settings) != tag:
        from training.registry import _client

        _client(settings).set_registered_model_tag(settings.model_name, REVIEWERS_TAG, tag)
        changes.append(f"{REVIEWERS_TAG} = {tag or '(none)'}")
    return changes


def show(settings) -> dict:
    """{"reviewers": [...], "users": {name: {"admin": bool, resource label: permission}}}:
    every user of the server against the four resources (missing ones: "missing")."""
    uri = _server(settings)
    ids = {r.label: (r, _resource_id(settings, r)) for r in resources(settings)}
    users = {}
    for user in _call(uri, "GET", "/api/2.0/mlflow/users/list").get("users", []):
        row = {"admin": bool(user.get("is_admin"))}
        for label, (resource, resource_id) in ids.items():
            row[label] = ("missing" if resource_id is None
                          else _permission(uri, user["username"], resource.kind, resource_id))
        users[user["username"]] = row
    return {"reviewers": sorted(reviewers(settings)), "users": users}


def _reviewers_tag(settings) -> str | None:
    from mlflow.exceptions import MlflowException

    from training.registry import _client

    try:
        return _client(settings).get_registered_model(settings.model_name).tags.get(
            REVIEWERS_TAG)
    except MlflowException as exc:
        if _missing(exc):
            return None
        raise


def reviewers(settings) -> set[str]:
    """The user names in the serving model's REVIEWERS_TAG (empty if unset or no model)."""
    return {n.strip() for n in (_reviewers_tag(settings) or "").split(",") if n.strip()}


def verify_credentials(tracking_uri: str, username: str, password: str) -> str:
    """The user name the tracking server authenticates for (username, password), asking it
    as that user (GET /api/2.0/mlflow/users/current); AccessError if it refuses them."""
    import httpx

    if not tracking_uri.startswith(("http://", "https://")):
        raise AccessError(f"credentials can only be verified by a tracking server, not "
                          f"{tracking_uri!r}")
    url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/users/current"
    try:
        response = httpx.get(url, auth=(username, password), timeout=30.0)
    except httpx.HTTPError as exc:
        raise ServerUnavailable(f"tracking server {tracking_uri} did not answer: {exc}"
                                ) from exc
    if response.status_code == 401:
        raise AccessError(f"the tracking server refused the credentials of {username!r} "
                          "(wrong user name or password)")
    if response.status_code != 200:
        raise AccessError(f"the tracking server answered {response.status_code} to "
                          f"{url}: {response.text[:200]}")
    try:
        return response.json()["user"]["username"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AccessError(f"{url} did not answer with a user (is the server started with "
                          "--app-name twinops-auth?)") from exc
