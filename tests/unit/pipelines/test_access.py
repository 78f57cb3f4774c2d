"""The role matrix of pipelines.access and the run-user rule of pipelines.mlflow_app, without
a server (the server behaviour: tests/integration/test_governance_access.py)."""

from __future__ import annotations

import pytest

from pipelines import access, mlflow_app


def test_desired_grants_follow_the_matrix():
    grants = access.desired_grants(service="svc", trainers=["t"], reviewers=["r", "tr"],
                                   viewers=["v"])
    assert grants["t"]["candidates model"] == "EDIT" and grants["t"]["serving model"] == "READ"
    assert set(grants["svc"].values()) == {"READ", "MANAGE"}
    assert set(grants["v"].values()) == {"NO_PERMISSIONS"}
    both = access.desired_grants(service="svc", trainers=["tr"], reviewers=["tr"])
    assert both["tr"]["training experiment"] == "EDIT"  # the higher of trainer and reviewer


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"trainers": ["svc"]}, "--service"),
    ({"trainers": ["v"], "viewers": ["v"]}, "--viewer"),
    ({"reviewers": [" "]}, "--reviewer"),
])
def test_desired_grants_refuse_conflicting_roles(kwargs, field):
    with pytest.raises(access.AccessError, match=field):
        access.desired_grants(service="svc", **kwargs)


def test_password_env_names():
    assert access.password_env("ci-trainer.2") == "TWINOPS_ACCESS_PASSWORD_CI_TRAINER_2"


def _rule(path: str, body, user: str = "trainer"):
    """run_user_rule's answer to POST `path` with JSON `body` by `user`, and the body the
    MLflow handler would then read."""
    from flask import Flask, g, request

    app = Flask(__name__)
    with app.test_request_context(path, method="POST", json=body):
        g.mlflow_authenticated_user = user
        answer = mlflow_app.run_user_rule()
        return answer, request.get_json(force=True, silent=True)


def test_run_user_rule_fills_a_missing_user():
    answer, body = _rule("/api/2.0/mlflow/runs/create", {"experiment_id": "1",
                                                          "user_id": "unknown"})
    assert answer is None and body["user_id"] == "trainer"
    assert body["tags"] == [{"key": "mlflow.user", "value": "trainer"}]


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/2.0/mlflow/runs/create", {"user_id": "reviewer"}, "user_id"),
    ("/ajax-api/2.0/mlflow/runs/create",
     {"tags": [{"key": "mlflow.user", "value": "reviewer"}]}, "tags[mlflow.user]"),
    ("/api/2.0/mlflow/runs/set-tag", {"run_id": "r", "key": "mlflow.user", "value": "x"},
     "value"),
    ("/api/2.0/mlflow/runs/delete-tag", {"run_id": "r", "key": "mlflow.user"}, "key"),
    ("/api/2.0/mlflow/runs/log-batch",
     {"run_id": "r", "tags": [{"key": "mlflow.user", "value": "x"}]}, "tags[mlflow.user]"),
])
def test_run_user_rule_refuses_another_user(path, body, field):
    answer, _ = _rule(path, body)
    assert answer.status_code == 403 and answer.json["message"].startswith(field)


def test_run_user_rule_leaves_other_requests_alone():
    assert _rule("/api/2.0/mlflow/runs/set-tag", {"key": "note", "value": "x"})[0] is None
    assert _rule("/api/2.0/mlflow/runs/create", {"user_id": "trainer"})[0] is None
    assert _rule("/api/2.0/mlflow/runs/create", ["not", "an", "object"])[0] is None
