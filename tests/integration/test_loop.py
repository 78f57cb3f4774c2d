"""The whole loop on a tiny simulated fleet, with the real libraries and servers.

`twinops run` (Prefect ephemeral API, Feast SQLite + parquet, Lightning, MLflow
sqlite, Evidently) in a temporary state dir, then the real BentoML server on a
free port answers /predict over HTTP with exactly what the champion loaded
directly from MLflow predicts on the same online features.
"""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import numpy as np
import pytest

from tests.integration.conftest import API_KEY_HEADERS, REPO, with_api_key

pytestmark = pytest.mark.integration


def test_whole_loop_then_http_predict(isolated_env, start_server, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "run"],
        cwd=REPO, env=isolated_env, capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "curl -s -X POST" in done.stdout

    from features.settings import get_settings

    settings = get_settings()
    summary = json.loads((settings.reports_dir / "last_run.json").read_text())
    assert summary["gate"]["passed"], summary["gate"]
    assert summary["promoted"]["version"] == summary["train"]["version"]
    assert summary["ingest"]["data_hash"]
    monitor = summary["monitor"]
    assert monitor is not None and (tmp_path / "state").as_posix() in monitor["report_html"]
    assert settings.prediction_log_path.exists()
    scored = summary["scored_assets"]
    assert scored, "the live fleet was not scored"

    server = start_server(with_api_key(isolated_env))
    asset = scored[0]
    response = httpx.post(f"{server.url}/predict", json={"asset_ids": [asset, "no-such-asset"]},
                          headers=API_KEY_HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    good, unknown = body["predictions"]
    assert unknown["asset_id"] == "no-such-asset" and "error" in unknown
    assert good["asset_id"] == asset
    assert body["model_version"] == summary["promoted"]["version"]

    # The same model loaded straight from the registry, on the same online features.
    from features.store import online_features
    from training.registry import load_by_alias

    model = load_by_alias(settings, "champion")
    feats = online_features(settings, [asset])
    direct = model.predictor.predict(feats, horizon=settings.serving.horizon)
    np.testing.assert_allclose(good["rul"], float(direct["rul"].iloc[0]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(good["p_fail"], float(direct["p_fail"].iloc[0]), atol=1e-6)

    bad = httpx.post(f"{server.url}/predict", json={"asset_ids": "not-a-list"},
                     headers=API_KEY_HEADERS, timeout=30)
    assert 400 <= bad.status_code < 500, bad.text
    no_key = httpx.post(f"{server.url}/predict", json={"asset_ids": [asset]}, timeout=30)
    assert no_key.status_code == 401, no_key.text
