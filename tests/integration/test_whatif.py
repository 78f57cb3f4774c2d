"""POST /whatif over a real `bentoml serve`: a tiny ProgPy pump fleet with a champion.

    module fixture: pump fleet (tiny profile: 6 run-to-failure pumps) + 6 live pumps ─►
                    ingest ─► features ─► train one version ─► champion (set directly: the
                    gates are tested elsewhere) ─► one server with an API key
    tests: a live pump under its current and a harsher profile (physics) · an unknown
           profile field is a 400 naming it · an unknown asset a 404 · no key a 401
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.integration.conftest import (
    API_KEY_HEADERS,
    in_env,
    serving,
    state_env,
    with_api_key,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("whatif")
    env = with_api_key({**os.environ, **state_env(root), "TWINOPS_ASSET_TYPE": "pump",
                        "TWINOPS_FEAST__TTL_DAYS": "400"})
    from features.settings import get_settings
    from pipelines.flows import features_flow, ingest_flow, train_flow
    from tests.integration.conftest import make_champion

    with in_env(env):
        s = get_settings()
        ingest_flow("simulator", s)
        ingest_flow("simulator-live", s)
        features_flow(s)
        make_champion(s, train_flow(settings=s).version)
        from features.datastore import load_readings

        readings = load_readings(s)
    live = readings[readings["asset_id"].astype(str).str.startswith("pump-live")]
    # the shortest live history: the filter's cost grows with the life's length
    env["_ASSET"] = str(live.groupby("asset_id", observed=True).size().idxmin())
    env["_ROOT"] = str(root)
    return env


@pytest.fixture(scope="module")
def server(env):
    from pathlib import Path

    with serving(env, Path(env["_ROOT"]) / "server.log") as srv:
        yield srv


def post(server, body, headers=API_KEY_HEADERS):
    return httpx.post(f"{server.url}/whatif", json=body, headers=headers, timeout=90)


def test_a_harsher_profile_shortens_the_pump_rul(server, env):
    asset = env["_ASSET"]
    answer = post(server, {"asset_id": asset, "profile": {"V": 620.0}, "n_samples": 20})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["asset_type"] == "pump" and body["rul_unit"] == "hours"
    assert body["method"].startswith("physics")
    current, harsher = body["current"], body["requested"]
    assert harsher["profile"]["V"] == 620.0 and current["profile"]["V"] < 620.0
    assert harsher["rul"] < current["rul"]
    assert body["details"]["elapsed_s"] > 0 and body["details"]["readings_used"] > 1

    same = post(server, {"asset_id": asset, "profile": {"V": current["profile"]["V"]},
                         "n_samples": 20}).json()
    assert same["requested"]["rul"] == pytest.approx(same["current"]["rul"], rel=0.05)
    assert harsher["rul"] < same["requested"]["rul"]


def test_bad_whatif_requests_are_4xx_naming_the_field(server, env):
    unknown_field = post(server, {"asset_id": env["_ASSET"], "profile": {"speed": 3.0}})
    assert unknown_field.status_code == 400, unknown_field.text
    assert "profile.speed" in unknown_field.json()["error"]
    unknown_asset = post(server, {"asset_id": "no-such-pump", "profile": {"V": 520.0}})
    assert unknown_asset.status_code == 404 and "asset_id" in unknown_asset.text
    not_a_number = post(server, {"asset_id": env["_ASSET"], "profile": {"V": "fast"}})
    assert not_a_number.status_code == 400 and "profile" in not_a_number.text
    assert post(server, {"asset_id": env["_ASSET"], "profile": {"V": 520.0}},
                headers={}).status_code == 401


def test_whatif_is_in_the_openapi_document(server):
    doc = httpx.get(f"{server.url}/docs.json", headers=API_KEY_HEADERS, timeout=30).json()
    assert "/whatif" in doc["paths"]


def test_the_cli_answers_the_same_question(env):
    import subprocess
    import sys

    from tests.integration.conftest import REPO

    done = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "whatif", env["_ASSET"],
         "--set", "V=620", "--n-samples", "10"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{env['_ASSET']} (pump), physics" in done.stdout and "requested" in done.stdout
    bad = subprocess.run(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "whatif", env["_ASSET"],
         "--set", "speed=3"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert bad.returncode == 2 and "profile.speed" in bad.stderr
