"""The role matrix of `twinops access setup` on a real `mlflow server --app-name twinops-auth`,
attacked with the plain MLflow client (issue #19).

`trainer` trained a candidate; the service copied it into the serving model. With only the
documented grants the trainer cannot hand out or take away rights (bypass 5), cannot move
`champion` or tag the serving model, cannot edit the reviewer list, cannot record a run as
someone else, cannot overwrite a review report (bypass 6); it can train and register into
the candidates model. `viewer` sees nothing; `reviewer` reads the review reports.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.integration.servers import (  # noqa: F401 (fixture)
    ADMIN,
    REPO,
    mlflow_governed_server,
    mlflow_user,
)

pytestmark = pytest.mark.integration


def as_user(server, name: str):
    return mlflow_user(name, server["passwords"][name])


def client(server):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=server["url"], registry_uri=server["url"])


def refused(call, *args, match: str | None = None, **kwargs):
    """Assert `call` is answered 403 by the server; its message (checked against `match`).
    MLflow raises an MlflowException for REST calls, requests' HTTPError for artifacts."""
    from mlflow.exceptions import MlflowException
    from requests import HTTPError

    with pytest.raises((MlflowException, HTTPError)) as info:
        call(*args, **kwargs)
    message = str(info.value)
    status = (info.value.response.status_code if isinstance(info.value, HTTPError)
              else 403 if info.value.error_code == "PERMISSION_DENIED" or "error code 403"
              in message else None)
    assert status == 403, message
    if match:
        assert match in message, message
    return message


def permission(server, user: str, kind: str, resource_id: str) -> str:
    from mlflow.server.auth.client import AuthServiceClient

    with mlflow_user(*ADMIN):
        return AuthServiceClient(server["url"]).get_user_permission(
            user, kind, resource_id).permission


def experiment_id(server, name: str) -> str:
    with mlflow_user(*ADMIN):
        return client(server).get_experiment_by_name(name).experiment_id


@pytest.fixture(scope="module")
def candidate(mlflow_governed_server):
    """v1 of the candidates model, from a run `trainer` created with the fluent API; the
    service then copies it into the serving model (what an approval does)."""
    import mlflow

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    mlflow.set_tracking_uri(server["url"])
    mlflow.set_registry_uri(server["url"])
    with as_user(server, "trainer"):
        with mlflow.start_run(experiment_id=experiment_id(server, settings.experiment_name)) as run:
            mlflow.log_text("weights", "model/weights.txt")
        version = client(server).create_model_version(
            settings.candidates_model_name, source=f"{run.info.artifact_uri}/model",
            run_id=run.info.run_id)
    with as_user(server, "service"):
        serving = client(server).copy_model_version(
            f"models:/{settings.candidates_model_name}/{version.version}", settings.model_name)
    return {"run_id": run.info.run_id, "version": version.version,
            "serving_version": serving.version}


def test_trainer_runs_as_itself_and_registers_candidates(mlflow_governed_server, candidate):
    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    with as_user(server, "admin"):
        run = client(server).get_run(candidate["run_id"])
        registered = client(server).get_model_version(settings.candidates_model_name,
                                                      candidate["version"])
    assert run.info.user_id == "trainer" and run.data.tags["mlflow.user"] == "trainer"
    assert registered.run_id == candidate["run_id"]
    # MlflowClient.create_run without tags sends user_id "unknown": the server records the
    # authenticated user instead
    exp = experiment_id(server, settings.experiment_name)
    with as_user(server, "trainer"):
        plain = client(server).create_run(exp)
    assert plain.info.user_id == "trainer" and plain.data.tags["mlflow.user"] == "trainer"


def test_trainer_cannot_record_a_run_as_someone_else(mlflow_governed_server, candidate):
    import httpx
    from mlflow.entities import RunTag

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    exp = experiment_id(server, settings.experiment_name)
    with as_user(server, "trainer"):
        trainer = client(server)
        # the client takes user_id from the mlflow.user tag
        refused(trainer.create_run, exp, tags={"mlflow.user": "reviewer"}, match="user_id")
        refused(trainer.set_tag, candidate["run_id"], "mlflow.user", "reviewer",
                match="mlflow.user")
        refused(trainer.delete_tag, candidate["run_id"], "mlflow.user", match="mlflow.user")
        refused(trainer.log_batch, candidate["run_id"],
                tags=[RunTag("mlflow.user", "reviewer")],
                match="mlflow.user")
    # the REST body directly: user_id and the tag disagreeing with the login, each named
    auth = ("trainer", server["passwords"]["trainer"])
    url = f"{server['url']}/api/2.0/mlflow/runs/create"
    for body, field in (
        ({"experiment_id": exp, "user_id": "reviewer"}, "user_id"),
        ({"experiment_id": exp, "user_id": "trainer",
          "tags": [{"key": "mlflow.user", "value": "reviewer"}]}, "tags[mlflow.user]"),
    ):
        response = httpx.post(url, json=body, auth=auth, timeout=30)
        assert response.status_code == 403 and field in response.json()["message"], \
            response.text
    with as_user(server, "admin"):
        run = client(server).get_run(candidate["run_id"])
        runs = client(server).search_runs([exp], max_results=100)
    assert run.data.tags["mlflow.user"] == "trainer"
    assert {r.info.user_id for r in runs} == {"trainer"}


def test_trainer_cannot_grant_or_revoke(mlflow_governed_server):
    """Bypass 5: the trainer holds no MANAGE, so it can neither grant nor revoke."""
    from mlflow.server.auth.client import AuthServiceClient

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    with as_user(server, "trainer"):
        auth = AuthServiceClient(server["url"])
        for model in (settings.model_name, settings.candidates_model_name):
            refused(auth.grant_user_permission, "viewer", "registered_model", model, "EDIT")
            refused(auth.revoke_user_permission, "reviewer", "registered_model", model)
        reviews = experiment_id(server, settings.reviews_experiment_name)
        refused(auth.grant_user_permission, "viewer", "experiment", reviews, "READ")
    assert permission(server, "viewer", "registered_model", settings.model_name) == \
        "NO_PERMISSIONS"
    assert permission(server, "reviewer", "registered_model", settings.model_name) == "READ"
    assert permission(server, "trainer", "registered_model", settings.model_name) == "READ"


def test_trainer_cannot_write_the_serving_model(mlflow_governed_server, candidate):
    """Bypass 1 at the source: no alias, tag, reviewer list or version from a trainer."""
    from pipelines import access

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    name, version = settings.model_name, candidate["serving_version"]
    with as_user(server, "trainer"):
        trainer = client(server)
        assert trainer.get_registered_model(name).name == name  # READ: it may look
        refused(trainer.set_registered_model_alias, name, "champion", version)
        refused(trainer.set_registered_model_tag, name, "review.status", "approved")
        refused(trainer.set_model_version_tag, name, version, "review.status", "approved")
        refused(trainer.set_registered_model_tag, name, access.REVIEWERS_TAG, "trainer")
        refused(trainer.delete_registered_model_tag, name, access.REVIEWERS_TAG)
        refused(trainer.create_model_version, name, source=f"models:/{name}/{version}")
    with as_user(server, "admin"):
        model = client(server).get_registered_model(name)
    assert model.aliases == {} and "review.status" not in model.tags
    with as_user(server, "service"):
        assert access.reviewers(settings) == {"reviewer"}


def test_viewer_cannot_read_and_reviewer_reads_reports(mlflow_governed_server, tmp_path):
    """The reviews experiment: the service writes, the reviewer reads, the trainer cannot
    overwrite (bypass 6), the viewer sees nothing."""
    import mlflow

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    reviews = experiment_id(server, settings.reviews_experiment_name)
    report = tmp_path / "report.html"
    report.write_text("<p>gates: FAIL</p>")
    with as_user(server, "service"):
        run = client(server).create_run(reviews)
        client(server).log_artifact(run.info.run_id, str(report), "review")
    with as_user(server, "viewer"):
        refused(client(server).get_registered_model, settings.model_name)
        refused(client(server).get_run, run.info.run_id)
    with as_user(server, "trainer"):
        fake = tmp_path / "fake" / "report.html"
        fake.parent.mkdir()
        fake.write_text("<p>gates: PASS</p>")
        refused(client(server).log_artifact, run.info.run_id, str(fake), "review")
    with as_user(server, "reviewer"):
        local = mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="review/report.html",
            dst_path=str(tmp_path / "got"), tracking_uri=server["url"])
    assert open(local).read() == "<p>gates: FAIL</p>"


def test_verify_credentials(mlflow_governed_server):
    from pipelines import access

    server = mlflow_governed_server
    assert access.verify_credentials(server["url"], "reviewer",
                                     server["passwords"]["reviewer"]) == "reviewer"
    with pytest.raises(access.AccessError, match="refused the credentials of 'reviewer'"):
        access.verify_credentials(server["url"], "reviewer", "not-the-password")


def test_access_setup_converges_and_is_idempotent(mlflow_governed_server):
    """Only the admin may run setup; a grant made by hand outside the matrix is taken back
    by a re-run; a second re-run changes nothing and says so. `access show` prints it."""
    from mlflow.server.auth.client import AuthServiceClient

    server, settings = mlflow_governed_server, mlflow_governed_server["settings"]
    with mlflow_user(*ADMIN):
        AuthServiceClient(server["url"]).grant_user_permission(
            "viewer", "registered_model", settings.model_name, "READ")
    env = {**os.environ, "TWINOPS_MLFLOW_TRACKING_URI": server["url"],
           "TWINOPS_STATE_DIR": str(settings.state_dir), "TWINOPS_PROFILE": "tiny",
           "TWINOPS_DATA_DIR": str(settings.data_dir),
           "MLFLOW_TRACKING_USERNAME": ADMIN[0], "MLFLOW_TRACKING_PASSWORD": ADMIN[1]}
    command = [sys.executable, "-m", "pipelines.cli", "access", "setup", "--service", "service",
               "--trainer", "trainer", "--reviewer", "reviewer", "--viewer", "viewer"]

    def twinops(args):
        done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    as_trainer = subprocess.run(command, env={**env, "MLFLOW_TRACKING_USERNAME": "trainer",
                                              "MLFLOW_TRACKING_PASSWORD":
                                              server["passwords"]["trainer"]},
                                cwd=REPO, capture_output=True, text=True, timeout=300)
    assert as_trainer.returncode == 2 and "admin" in as_trainer.stderr, as_trainer.stderr
    first = twinops(command)
    assert "viewer on serving model: READ -> NO_PERMISSIONS" in first, first
    assert "nothing to change" in twinops(command)
    shown = twinops([*command[:4], "show"])
    rows = {line.split()[0]: line.split()[1:] for line in shown.splitlines()[1:-1]}
    assert rows["trainer"] == ["EDIT", "EDIT", "READ", "READ"], shown
    assert rows["reviewer"] == ["READ", "READ", "READ", "READ"], shown
    assert rows["service"] == ["READ", "MANAGE", "MANAGE", "MANAGE"], shown
    assert rows["viewer"] == ["NO_PERMISSIONS"] * 4, shown
    assert shown.splitlines()[-1] == "twinops.reviewers: reviewer", shown
