"""Reviews against a real `mlflow server --app-name twinops-auth`, the governor and Prefect.

Identities (tests.integration.servers.mlflow_governed_server, `twinops access setup`):
`trainer` trains, `reviewer` holds the reviewer role, `viewer` holds nothing, `service` is
the governor's identity. The rules under test: the governor applies decisions with the
caller's verified credentials; the trainer cannot approve (role, and four-eyes from the
run's recorded user even when its tags say otherwise); an approval copies the candidate
into the serving model as `champion`; the gates' verdict, the report's and the artifact's
hashes come from the audit chain; rejection and rollback; the promotion flow waits for the
reviewer; the issue's seven bypasses, tried with the plain MLflow client, are refused or
detected; serving refuses a champion without an approval; the report renders in Chromium.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from tests.integration.conftest import REPO
from tests.integration.servers import (  # noqa: F401 (fixture)
    ADMIN,
    mlflow_governed_server,
    mlflow_user,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(mlflow_governed_server):
    """The governor running as `service`; v1 trained by `trainer` and proposed."""
    from benchmarks.processes import free_port, stop_group, wait_http_ok
    from pipelines.flows import evaluate_flow, features_flow, ingest_flow, train_flow
    from pipelines.runtime import prepare

    g = mlflow_governed_server
    base, url, passwords = g["settings"], g["url"], g["passwords"]
    port = free_port()
    env = {**os.environ, "TWINOPS_STATE_DIR": str(base.state_dir),
           "TWINOPS_DATA_DIR": str(base.data_dir), "TWINOPS_MLFLOW_TRACKING_URI": url,
           "TWINOPS_PROFILE": "tiny", "TWINOPS_CONFIG": str(base.state_dir / "none.yaml")}
    log = base.state_dir.parent / "governor.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    governor = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "govern", "--port",
         str(port)], cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
        env={**env, "MLFLOW_TRACKING_USERNAME": "service",
             "MLFLOW_TRACKING_PASSWORD": passwords["service"]}, start_new_session=True)
    gov_url = f"http://127.0.0.1:{port}"
    wait_http_ok(f"{gov_url}/healthz", governor, 120, log_text=log.read_text)
    settings = prepare(base.model_copy(update={"review": base.review.model_copy(
        update={"governor_url": gov_url})}))
    with as_user(g, "trainer"):
        ingest_flow("simulator", settings)
        features_flow(settings)
        v1 = train_flow(settings).version
        assert evaluate_flow(v1, settings)["status"] == "awaiting_approval"
    yield {**g, "settings": settings, "v1": v1, "governor": gov_url,
           "env": {**env, "TWINOPS_REVIEW__GOVERNOR_URL": gov_url}}
    stop_group(governor)


@pytest.fixture(autouse=True)
def _credentials_restored():
    """`client()` sets the MLflow credentials of this process: put them back after a test."""
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def as_user(world, name: str):
    return mlflow_user(name, world["passwords"][name])


def client(world, name: str):
    """A plain MlflowClient acting as `name` (the bypasses use nothing of twinops). It sends
    whatever credentials the environment holds when it calls: use it at once."""
    from mlflow import MlflowClient

    os.environ["MLFLOW_TRACKING_USERNAME"] = name
    os.environ["MLFLOW_TRACKING_PASSWORD"] = world["passwords"][name]
    return MlflowClient(tracking_uri=world["url"], registry_uri=world["url"])


@contextlib.contextmanager
def environ(values: dict):
    """os.environ = `values` inside (the CLI's runtime.prepare writes to it), restored after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def cli(world, user: str, *args: str):
    from typer.testing import CliRunner

    from pipelines.cli import app

    with environ({**world["env"], "MLFLOW_TRACKING_USERNAME": user,
                  "MLFLOW_TRACKING_PASSWORD": world["passwords"][user]}):
        return CliRunner().invoke(app, list(args))


def champion(world) -> str | None:
    from training.registry import get_alias_version

    with as_user(world, "service"):
        return get_alias_version(world["settings"], "champion")


def audit_entries(world) -> list[tuple]:
    from pipelines import audit

    with as_user(world, "reviewer"):
        return [(e["action"], e.get("candidate_version"), e["outcome"], e["actor"])
                for e in audit.verified_history(world["settings"])]


def train(world, settings=None) -> str:
    from pipelines.flows import train_flow

    with as_user(world, "trainer"):
        return train_flow(settings or world["settings"]).version


def propose(world, version: str) -> dict:
    from pipelines import review

    with as_user(world, "trainer"):
        return review.propose(world["settings"], version)


# ------------------------------------------------------------------- the workflow
def test_roles_four_eyes_and_approval_through_the_governor(world):
    from pipelines import review

    settings, v1 = world["settings"], world["v1"]
    with as_user(world, "trainer"), pytest.raises(review.ReviewError, match="reviewer role"):
        review.approve(settings, v1, "my own model looks fine")
    with as_user(world, "viewer"), pytest.raises(review.ReviewError, match="reviewer role"):
        review.approve(settings, v1, "I approve")
    with mlflow_user("reviewer", "wrong-password"), pytest.raises(review.ReviewError,
                                                                  match="401"):
        review.approve(settings, v1, "a guessed password")
    assert champion(world) is None
    with as_user(world, "reviewer"):
        result = review.approve(settings, v1, "metrics and physics checks look right")
    assert result["approved_by"] == "reviewer" and result["version"] == v1
    assert champion(world) == result["champion"]
    from training.registry import version_tags

    with as_user(world, "reviewer"):
        served = version_tags(settings, result["champion"])
    assert served["candidate_version"] == v1 and served["review.decided_by"] == "reviewer"
    assert ("approve", v1, "champion", "reviewer") in audit_entries(world)
    # the reviewer reads the recorded report with read rights only
    shown = cli(world, "reviewer", "review", "show", v1)
    assert shown.exit_code == 0, shown.output
    assert "report_sha256" in shown.output


def test_worse_candidate_is_stopped_then_rejection_and_rollback(world):
    from pipelines import review

    settings = world["settings"]
    first = champion(world)
    weak = settings.model_copy(update={"training": settings.training.model_copy(
        update={"max_epochs": 1, "learning_rate": 1e-4})})
    v_weak = train(world, weak)
    evaluated = cli(world, "trainer", "evaluate", "--version", v_weak)
    assert evaluated.exit_code == 3, evaluated.output  # a refusal stops a script
    assert "rmse vs champion" in evaluated.output
    v_same, v_other = train(world), train(world)
    assert propose(world, v_same)["status"] == review.AWAITING
    assert propose(world, v_other)["status"] == review.AWAITING
    with as_user(world, "reviewer"):
        approved = review.approve(settings, v_same, "equivalent retrain")
        review.reject(settings, v_other, "not needed")
        with pytest.raises(review.ReviewError, match="already decided"):
            review.approve(settings, v_other, "changed my mind")
        assert champion(world) == approved["champion"]
        rolled = review.rollback(settings, "back to the first approved model")
    assert rolled == {"champion": first, "rolled_back": approved["champion"], "by": "reviewer"}
    assert champion(world) == first
    entries = audit_entries(world)
    assert ("propose", v_weak, review.REJECTED, "service") in entries
    assert ("reject", v_other, review.REJECTED, "reviewer") in entries
    assert ("rollback", world["v1"], "champion", "reviewer") in entries
    with as_user(world, "reviewer"), pytest.raises(review.ReviewError, match="nothing to roll"):
        review.rollback(settings, "one more")
    world["v_weak"] = v_weak


def test_promotion_flow_waits_for_the_reviewer(world, prefect_server):
    version = train(world)
    env = {**world["env"], "PREFECT_API_URL": prefect_server}
    waiting = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "review", "request", version],
        cwd=REPO, env={**env, "MLFLOW_TRACKING_USERNAME": "trainer",
                       "MLFLOW_TRACKING_PASSWORD": world["passwords"]["trainer"]},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not _paused_runs(prefect_server):
            assert waiting.poll() is None, waiting.stdout.read()
            assert time.monotonic() < deadline, "promotion flow never paused"
            time.sleep(1)
        before = champion(world)
        world["env"]["PREFECT_API_URL"] = prefect_server
        try:
            approve = cli(world, "reviewer", "review", "approve", version, "--comment",
                          "reviewed the report")
        finally:
            del world["env"]["PREFECT_API_URL"]
        assert approve.exit_code == 0, approve.output
        assert '"resumed_flow_run": null' not in approve.output
        out, _ = waiting.communicate(timeout=180)
        assert waiting.returncode == 0, out
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert champion(world) != before


def _paused_runs(api: str) -> list:
    body = {"flow_runs": {"state": {"name": {"any_": ["Paused"]}}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


# ------------------------------------------------- the seven bypasses of issue #19
def test_trainer_cannot_move_champion_and_serving_refuses_an_unapproved_one(world):
    """Bypass 1: the alias set on a gate-rejected version."""
    from mlflow.exceptions import MlflowException

    from pipelines import approvals

    settings, v_weak = world["settings"], world.get("v_weak") or world["v1"]
    name = settings.model_name
    with pytest.raises(MlflowException, match="403|PERMISSION"):
        client(world, "trainer").set_registered_model_alias(name, "champion", "1")
    with pytest.raises(MlflowException, match="403|PERMISSION"):
        client(world, "trainer").copy_model_version(
            f"models:/{settings.candidates_model_name}/{v_weak}", name)
    # whoever holds MANAGE on the serving model (here the admin) can still move the alias
    # by hand: the service then refuses to serve it
    admin = client(world, ADMIN[0])
    good = champion(world)
    unapproved = admin.copy_model_version(
        f"models:/{settings.candidates_model_name}/{v_weak}", name).version
    admin.set_registered_model_alias(name, "champion", unapproved)
    try:
        # what serving, scoring and monitoring load the champion with
        with as_user(world, "service"), pytest.raises(approvals.NotApproved,
                                                      match="no approval"):
            approvals.load_champion(settings)
    finally:
        admin.set_registered_model_alias(name, "champion", good)
    with as_user(world, "service"):
        assert approvals.load_champion(settings).version == good


def test_a_trainer_tag_does_not_change_who_trained(world):
    """Bypass 2: `trained_by` set to another user, then approval by the trainer."""
    from pipelines import access, review

    settings = world["settings"]
    version = train(world)
    propose(world, version)
    client(world, "trainer").set_model_version_tag(settings.candidates_model_name, version,
                                                   "trained_by", "viewer")
    admin = client(world, ADMIN[0])  # make the trainer a reviewer too, for this test
    admin.set_registered_model_tag(settings.model_name, access.REVIEWERS_TAG,
                                   "reviewer,trainer")
    try:
        with as_user(world, "trainer"), pytest.raises(review.ReviewError, match="four-eyes"):
            review.approve(settings, version, "the tag says viewer trained it")
    finally:
        admin.set_registered_model_tag(settings.model_name, access.REVIEWERS_TAG, "reviewer")


def test_tags_on_a_rejected_candidate_do_not_make_it_approvable(world):
    """Bypass 3: gate failures deleted and `review.status=approved` set by the trainer."""
    from pipelines import review

    settings, v_weak = world["settings"], world.get("v_weak")
    if v_weak is None:
        pytest.skip("needs the gate-rejected candidate of the rejection test")
    from mlflow.exceptions import MlflowException

    trainer = client(world, "trainer")
    with pytest.raises(MlflowException, match="403|PERMISSION"):  # deleting needs MANAGE
        trainer.delete_model_version_tag(settings.candidates_model_name, v_weak,
                                         "review.gate_failures")
    trainer.set_model_version_tag(settings.candidates_model_name, v_weak,
                                  "review.gate_failures", "")
    trainer.set_model_version_tag(settings.candidates_model_name, v_weak, "review.status",
                                  "awaiting_approval")
    with as_user(world, "reviewer"), pytest.raises(review.ReviewError, match="gates refused"):
        review.approve(settings, v_weak, "the tags say it passed")


def test_trainer_cannot_write_the_serving_model_grants_reviews_or_audit(world):
    """Bypasses 4 and 6 and the audit: writes refused by the tracking server (bypass 5,
    grants, is tried in test_governance_access)."""
    from mlflow.exceptions import MlflowException

    settings = world["settings"]
    trainer = client(world, "trainer")
    serving = champion(world)
    refused = pytest.raises(MlflowException, match="403|PERMISSION")
    with refused:  # 4: the rollback chain
        trainer.set_model_version_tag(settings.model_name, serving,
                                      "review.previous_champion", "3")
    with refused:  # the audit chain's tags
        trainer.set_registered_model_tag(settings.model_name, "twinops.audit.000000", "{}")
    review_run = trainer.search_runs(
        [trainer.get_experiment_by_name(settings.reviews_experiment_name).experiment_id])[0]
    fake = settings.state_dir / "fake" / f"review-v{world['v1']}.html"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("<html>every gate PASS</html>")
    from requests import HTTPError  # the proxied artifact store answers through requests

    with pytest.raises(HTTPError, match="403"):  # 6: the report re-uploaded
        trainer.log_artifact(review_run.info.run_id, str(fake), "review")


def test_an_altered_report_is_detected(world):
    """Bypass 6 by someone who can write the reviews experiment: the hash gives it away."""
    from pipelines import audit

    settings, v1 = world["settings"], world["v1"]
    with as_user(world, "reviewer"):
        uri = next(e for e in audit.verified_history(settings)
                   if e["action"] == "propose" and e["candidate_version"] == v1)["report_uri"]
    run_id = uri.split("/")[1]
    fake = settings.state_dir / "fake" / f"review-v{v1}.html"
    fake.parent.mkdir(exist_ok=True)
    fake.write_text("<html>every gate PASS</html>")
    client(world, ADMIN[0]).log_artifact(run_id, str(fake), "review")
    shown = cli(world, "reviewer", "review", "show", v1)
    assert shown.exit_code != 0 and "SHA-256 differs" in shown.output, shown.output


def test_an_edited_audit_mirror_is_found_by_verify(world):
    """Bypass 7: audit.jsonl edited by hand."""
    assert cli(world, "reviewer", "review", "history", "--verify").exit_code == 0
    path = world["settings"].state_dir / "audit.jsonl"
    original = path.read_text()
    path.write_text(original.replace('"outcome":"rejected"', '"outcome":"awaiting_approval"',
                                     1))
    try:
        result = cli(world, "reviewer", "review", "history", "--verify")
        assert result.exit_code == 1 and "edited" in result.output, result.output
    finally:
        path.write_text(original)


def test_report_renders_with_plots_in_headless_chromium(world, tmp_path):
    """The reviewer's HTML report renders in a real browser, plots included (screenshot kept),
    and reads top-down: the headline, the gates, the cut-point scoring, what changed."""
    from tests.integration.conftest import chromium_screenshot

    report = world["settings"].reports_dir / f"review-v{world['v1']}.html"
    html = report.read_text()
    # trajectories of the worst assets, residuals by band, predicted vs true, calibration
    assert html.count('src="data:image/png;base64,') == 4
    assert html.count("<figcaption>") == 4
    sections = ['class="headline pass"', "Gates", "Scoring at the cut points (what the gates read)",
                "What changed: training configuration", "Data change since the champion",
                "DVC data hash",
                "Error per asset at the cut points", "Error by true-RUL band at the cut points",
                "All evaluation rows (not what the gates read)", "Physics checks"]
    positions = [html.index(section) for section in sections]
    assert positions == sorted(positions)
    assert f"v{world['v1']} has no champion to compare with" in html
    assert "<td>max_epochs</td>" in html and "<td>learning_rate</td>" in html  # the run's params
    assert re.search(r"\[n_rows\]</td><td>count</td><td>\d+</td>", html)  # no decimals
    shot = tmp_path / "review-report.png"
    colours = chromium_screenshot(report, shot, (1200, 5200))
    assert colours > 200, f"screenshot looks blank ({colours} colours): {shot}"
    print(f"review report screenshot: {shot}")


def test_the_version_page_in_the_mlflow_ui_leads_to_the_report(world, tmp_path):
    """The reviewer opens the candidate in the MLflow UI: its description (the headline,
    the gates, the figures) and the report's link are on the version page itself.

    Headless Chromium cannot log in to the basic-auth UI (credentials in the URL do not
    reach the app's API calls), so a second, read-only UI server is started on the same
    backend store.
    """
    from benchmarks.processes import free_port, stop_group, wait_http_ok
    from tests.integration.conftest import chromium_screenshot, chromium_text

    settings, v1 = world["settings"], world["v1"]
    store = settings.state_dir.parent / "mlflow.db"  # the governed server's backend store
    port = free_port()
    log = tmp_path / "ui.log"
    ui = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                           f"sqlite:///{store}", "--host", "127.0.0.1", "--port", str(port),
                           "--workers", "1"], stdout=log.open("w"), stderr=subprocess.STDOUT,
                          start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/health", ui, 120, log_text=log.read_text)
        page = f"http://127.0.0.1:{port}/#/models/{settings.candidates_model_name}/versions/{v1}"
        dom = chromium_text(page, tmp_path)
        shot = tmp_path / "mlflow-version-page.png"
        assert chromium_screenshot(page, shot, (1400, 1000), wait_ms=20000) > 50
    finally:
        stop_group(ui)
    assert "Description" in dom and "has no champion to compare with" in dom, dom[-1500:]
    assert f">review-v{v1}.html</a>" in dom and "Gates:" in dom
    print(f"MLflow version page screenshot: {shot}")
