"""The served OpenAPI document is true: a generated client calls /predict.

    module fixture: simulator fleet ─► features ─► one trained champion ─► server (API keys)
    tests: the document validates as served · openapi-python-client's client of it calls
           /predict and parses its answers (200, 401)
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    TEST_API_KEY,
    in_env,
    serving,
    state_env,
    with_api_key,
)

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from features.settings import get_settings
    from pipelines.flows import features_flow, ingest_flow, train_flow
    from training.registry import set_alias

    root = tmp_path_factory.mktemp("contract")
    env = with_api_key({**os.environ, **state_env(root, n_assets=10),
                        "TWINOPS_FEAST__TTL_DAYS": "400"})
    with in_env(env):
        s = get_settings()
        ingest_flow("simulator", s)
        features_flow(s)
        set_alias(s, "champion", train_flow(settings=s).version)
    env["_ROOT"] = str(root)
    return env


@pytest.fixture(scope="module")
def server(env):
    with serving(env, Path(env["_ROOT"]) / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def assets(env):
    from features import datastore
    from features.settings import get_settings

    with in_env(env):
        return sorted(set(datastore.load_readings(get_settings())["asset_id"].astype(str)))


def test_the_served_document_is_valid(server):
    from openapi_spec_validator import OpenAPIV30SpecValidator

    spec = httpx.get(f"{server.url}/docs.json", timeout=30).json()
    assert [e.message for e in OpenAPIV30SpecValidator(spec).iter_errors()] == []
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"


def test_a_generated_client_calls_predict(server, assets, tmp_path):
    """openapi-python-client's client of the served document: a typed call to /predict, its
    200 and 401 parsed into the declared models."""
    (tmp_path / "docs.json").write_text(httpx.get(f"{server.url}/docs.json", timeout=30).text)
    bin_dir = str(Path(sys.executable).parent)  # its post-generation step runs ruff
    done = subprocess.run(
        [f"{bin_dir}/openapi-python-client", "generate", "--path", "docs.json",
         "--output-path", "twinops_client", "--meta", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}"})
    assert done.returncode == 0 and "Warning" not in done.stdout, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        from twinops_client import AuthenticatedClient
        from twinops_client.api.service_ap_is import twinops_predict
        from twinops_client.models import Error, Prediction, PredictionError, PredictRequest

        client = AuthenticatedClient(base_url=server.url, token=TEST_API_KEY, timeout=30)
        answer = twinops_predict.sync_detailed(
            client=client, body=PredictRequest(asset_ids=[assets[0], "no-such-asset"]))
        assert answer.status_code == 200, answer.content
        known, unknown = answer.parsed.predictions
        assert isinstance(known, Prediction) and known.asset_id == assets[0]
        assert 0 <= known.p_fail <= 1 and known.rul_lower <= known.rul <= known.rul_upper
        assert isinstance(unknown, PredictionError) and unknown.asset_id == "no-such-asset"
        wrong_key = AuthenticatedClient(base_url=server.url, token="wrong", timeout=30)
        refused = twinops_predict.sync_detailed(
            client=wrong_key, body=PredictRequest(asset_ids=[assets[0]]))
        assert refused.status_code == 401 and isinstance(refused.parsed, Error)
        assert "API key" in refused.parsed.error
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m.split(".")[0] == "twinops_client"]:
            del sys.modules[name]
