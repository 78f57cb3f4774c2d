"""The closed loop on the simulator: serve a champion, stream drifted readings, monitor → retrain.

    train fleet ─► ingest/features/train/evaluate/promote (in-process Prefect flows)
    real `bentoml serve` (champion) ◄── POST /predict ◄── live fleet with a sensor bias,
                                         │                 ingested + materialized online
                                         ▼ prediction log
    monitor_flow (in-process) ─► drift on the biased sensors ─► train_flow ─► new `challenger`
                                                                  tags link the drift report
    and the server still answers with the same champion version.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration

BIASED = {"sensor_3_mean", "sensor_4_mean", "sensor_11_mean"}


@pytest.fixture
def loop_env(isolated_env, monkeypatch):
    extra = {
        # 16 live assets, one state each: trust a verdict from 10 assets on.
        "TWINOPS_MONITORING__MIN_ROWS": "10",
        "TWINOPS_SERVING__AUTH_ENABLED": "false",
    }
    for key, value in extra.items():
        monkeypatch.setenv(key, value)
    return {**isolated_env, **extra}


def test_drifted_stream_triggers_a_challenger_while_the_champion_serves(loop_env, start_server):
    from mlflow import MlflowClient

    from features.settings import get_settings
    from pipelines.flows import (
        evaluate_flow,
        features_flow,
        ingest_flow,
        promote_flow,
        train_flow,
    )
    from pipelines.monitor_flow import monitor_flow
    from training.registry import get_alias_version

    settings = get_settings()
    ingest_flow("simulator", settings)
    features_flow(settings)
    trained = train_flow(settings)
    assert evaluate_flow(trained.version, settings)["passed"]
    promote_flow(trained.version, demo_auto_approve=True, settings=settings)
    champion = get_alias_version(settings, "champion")

    server = start_server(loop_env)
    live = ingest_flow("simulator-live:bias", settings)  # readings streamed in, biased
    assert live.rows_appended > 0
    features_flow(settings)  # window features → offline + online store
    from features import datastore

    readings = datastore.load_readings(settings)
    live_ids = sorted(a for a in readings["asset_id"].unique() if a.startswith("live"))
    response = httpx.post(f"{server.url}/predict", json={"asset_ids": live_ids}, timeout=60)
    assert response.status_code == 200, response.text
    assert all("error" not in p for p in response.json()["predictions"])
    assert response.json()["model_version"] == champion

    summary = monitor_flow(settings)

    assert summary.drift, summary
    verdict = json.loads(Path(summary.verdict_json).read_text())
    assert verdict["stage"] == "champion_predicted_rul"
    assert verdict["drifted_columns"] and set(verdict["drifted_columns"]) <= BIASED, verdict
    assert summary.retrain and summary.retrained_version not in (None, champion)
    assert summary.challenger

    client = MlflowClient(settings.tracking_uri, registry_uri=settings.tracking_uri)
    challenger = client.get_model_version_by_alias(settings.model_name, "challenger")
    assert str(challenger.version) == summary.retrained_version
    assert challenger.tags["trigger.monitor_run"] == summary.monitor_run_id
    assert challenger.tags["trigger.report_uri"].startswith(f"runs:/{summary.monitor_run_id}/")
    logged = [f.path for f in client.list_artifacts(summary.monitor_run_id, "drift")]
    assert "drift/verdict.json" in logged and "drift/verdict.evidently.html" in logged

    # never promoted by itself: the alias and the running server still serve the old champion
    assert get_alias_version(settings, "champion") == champion
    again = httpx.post(f"{server.url}/predict", json={"asset_ids": live_ids[:1]}, timeout=60)
    assert again.status_code == 200 and again.json()["model_version"] == champion
