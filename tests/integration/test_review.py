"""Promotion reviews against a real `mlflow server --app-name basic-auth` and Prefect server.

alice trains; bob, the reviewer, holds MANAGE on the registered model (moving
aliases needs EDIT, removing the challenger alias of a rejected version needs
MANAGE); mallory holds only the default READ. The rules under test: a trainer
cannot approve their own model, a user without permission cannot approve, an
approved version becomes champion and the tracking server answers with it,
rejection and rollback leave the right alias and audit entries, a candidate
worse than the champion is stopped by the gates, the promotion flow waits
(Prefect pause-for-input) until `twinops review approve` resumes it, and the
report renders with its plots in headless Chromium.
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
from tests.integration.servers import ADMIN, USERS, mlflow_auth_server  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration



@contextlib.contextmanager
def as_user(name: str):
    password = ADMIN[1] if name == ADMIN[0] else USERS[name]
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = name, password
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


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


def user_env(name: str) -> dict:
    return {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": USERS[name]}


@pytest.fixture(scope="module")
def world(mlflow_auth_server, tmp_path_factory):
    """Data and features in a temp state dir, v1 trained by alice, bob granted MANAGE."""
    from features.settings import get_settings
    from pipelines.flows import evaluate_flow, features_flow, ingest_flow, train_flow
    from pipelines.runtime import prepare

    tmp = tmp_path_factory.mktemp("review")
    settings = prepare(get_settings(state_dir=tmp / "state", data_dir=tmp / "ws" / "data",
                                    mlflow_tracking_uri=mlflow_auth_server, profile="tiny"))
    with as_user("alice"):
        ingest_flow("simulator", settings)
        features_flow(settings)
        v1 = train_flow(settings).version
        assert evaluate_flow(v1, settings)["status"] == "awaiting_approval"
    from mlflow.server.auth.client import AuthServiceClient

    with as_user("admin"):
        AuthServiceClient(mlflow_auth_server).grant_user_permission(
            "bob", "registered_model", settings.model_name, "MANAGE")
    return {"settings": settings, "v1": v1, "url": mlflow_auth_server,
            "env": {**os.environ, "TWINOPS_STATE_DIR": str(settings.state_dir),
                    "TWINOPS_DATA_DIR": str(settings.data_dir),
                    "TWINOPS_MLFLOW_TRACKING_URI": mlflow_auth_server,
                    "TWINOPS_PROFILE": "tiny"}}


def champion_on_server(world) -> str:
    from mlflow import MlflowClient

    with as_user("admin"):
        client = MlflowClient(tracking_uri=world["url"], registry_uri=world["url"])
        return client.get_model_version_by_alias(world["settings"].model_name, "champion").version


def status_of(world, version) -> str:
    from training.registry import version_tags

    with as_user("admin"):
        return version_tags(world["settings"], version).get("review.status")


def test_four_eyes_permissions_and_approval(world):
    from pipelines import audit, review

    settings, v1 = world["settings"], world["v1"]
    with as_user("alice"), pytest.raises(review.ReviewError, match="four-eyes"):
        review.approve(settings, v1, "my own model looks fine")
    with as_user("mallory"), pytest.raises(review.ReviewError, match="lacks permission"):
        review.approve(settings, v1, "I approve")
    with as_user("bob"):
        result = review.approve(settings, v1, "metrics and physics checks look right")
    assert result["approved_by"] == "bob"
    assert champion_on_server(world) == v1
    assert status_of(world, v1) == review.APPROVED
    entries = [(e["action"], e["outcome"], e["actor"]) for e in audit.history(settings)]
    assert ("approve", "refused", "alice") in entries
    assert ("approve", "refused", "mallory") in entries
    assert ("approve", "champion", "bob") in entries
    # evaluating the champion again rebuilds its report and decides nothing
    from training.registry import get_alias_version

    with as_user("admin"):  # logging the rebuilt report to alice's run needs her or admin
        again = review.propose(settings, v1)
        assert get_alias_version(settings, "challenger") != v1
    assert again["status"] == review.APPROVED and status_of(world, v1) == review.APPROVED


def test_worse_candidate_is_stopped_and_rejection_and_rollback(world):
    from pipelines import audit, review
    from pipelines.flows import evaluate_flow, train_flow
    from training.registry import get_alias_version

    settings, v1 = world["settings"], world["v1"]
    if champion_on_server(world) != v1:
        pytest.skip("needs the approval test's champion")
    weak = settings.model_copy(update={"training": settings.training.model_copy(
        update={"max_epochs": 1, "learning_rate": 1e-4})})
    with as_user("alice"):
        v_weak = train_flow(weak).version
        proposal = review.propose(settings, v_weak)
    assert not proposal["passed"]
    assert any(f.startswith("rmse vs champion") for f in proposal["failures"]), proposal
    assert status_of(world, v_weak) == review.REJECTED

    with as_user("alice"):  # same data, settings and seed as v1: as good as the champion
        v_same = train_flow(settings).version
        assert evaluate_flow(v_same, settings)["status"] == review.AWAITING
        v_other = train_flow(settings).version
        assert evaluate_flow(v_other, settings)["status"] == review.AWAITING
    with as_user("bob"):
        review.approve(settings, v_same, "equivalent retrain")
        review.reject(settings, v_other, "not needed")
        assert get_alias_version(settings, "challenger") is None
        assert champion_on_server(world) == v_same
        rolled = review.rollback(settings, "back to the first approved model")
    assert rolled == {"champion": v1, "rolled_back": v_same, "by": "bob"}
    assert champion_on_server(world) == v1
    assert status_of(world, v_same) == review.ROLLED_BACK
    assert status_of(world, v_other) == review.REJECTED
    actions = [(e["action"], e["version"], e["outcome"]) for e in audit.history(settings)]
    assert ("propose", v_weak, review.REJECTED) in actions
    assert ("reject", v_other, review.REJECTED) in actions
    assert ("rollback", v1, "champion") in actions


def test_promotion_flow_waits_for_the_reviewer(world, prefect_server):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.flows import train_flow

    settings = world["settings"]
    with as_user("alice"):
        version = train_flow(settings).version
    env = {**world["env"], "PREFECT_API_URL": prefect_server}
    waiting = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", "review", "request", version],
        cwd=REPO, env={**env, **user_env("alice")}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not _paused_runs(prefect_server):
            assert waiting.poll() is None, waiting.stdout.read()
            assert time.monotonic() < deadline, "promotion flow never paused"
            time.sleep(1)
        assert champion_on_server(world) != version
        # bob approves with the CLI in this process (its libraries are imported already)
        with environ({**env, **user_env("bob")}):
            approve = CliRunner().invoke(
                app, ["review", "approve", version, "--comment", "reviewed the report"])
        assert approve.exit_code == 0, approve.output
        assert '"resumed_flow_run": null' not in approve.output
        out, _ = waiting.communicate(timeout=180)
        assert waiting.returncode == 0, out
    finally:
        if waiting.poll() is None:
            waiting.kill()
    assert champion_on_server(world) == version


def _paused_runs(api: str) -> list:
    body = {"flow_runs": {"state": {"name": {"any_": ["Paused"]}}}}
    return httpx.post(f"{api}/flow_runs/filter", json=body, timeout=10).json()


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
