"""The whole closed loop on a tiny simulated fleet, with the real libraries and servers.

    `twinops run --drift bias` (the CLI, in the test process; Feast SQLite + DuckDB,
    Lightning, MLflow sqlite, Evidently, flows on the session's Prefect server), for each
    simulated asset type (the turbofan, and the pump simulated by NASA ProgPy):
        train fleet ─► ingest / features / train / evaluate / promote (demo approval)
        live fleet with a sensor bias and feed faults ─► ingest / features / score
        monitor ─► drift on the biased sensors ─► retrain ─► new `challenger` (turbofan)
    then a real `bentoml serve` on a free port answers /predict with the champion — exactly
    what the champion loaded straight from MLflow predicts on the same online features —
    and never with the challenger the monitor trained; a batch mixing a turbofan and a pump
    is answered by each type's champion.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.conftest import API_KEY_HEADERS, with_api_key

pytestmark = pytest.mark.integration

BIASED = {"sensor_3_mean", "sensor_4_mean", "sensor_11_mean"}


def test_whole_loop_with_drift_then_http_predict(isolated_env, start_server, monkeypatch):
    from typer.testing import CliRunner

    from pipelines.cli import app

    # a tiny live fleet, one state per asset: trust a drift verdict from 10 assets on
    monkeypatch.setenv("TWINOPS_MONITORING__RETRAIN__MIN_ROWS", "10")
    done = CliRunner().invoke(app, ["run", "--drift", "bias"])  # the CLI, in this process
    assert done.exit_code == 0, done.output[-4000:]
    assert "curl -s -X POST" in done.output
    # the loop ends in a decision: the top at-risk asset and what is recommended for it
    assert "top at-risk asset" in done.output and "recommendation      " in done.output
    # ... and says where its alerts and work-order proposals went
    assert "alerts              " in done.output and "(twinops alerts list)" in done.output
    assert "work orders         " in done.output
    assert "top drivers         sensor_" in done.output  # the top asset's explanation
    assert "what-if             " in done.output and "physics" in done.output  # the pump's
    assert "fleet page          " in done.output

    from features.settings import get_settings
    from training.registry import get_alias_version, version_tags

    settings = get_settings()
    summary = json.loads((settings.reports_dir / "last_run.json").read_text())
    assert summary["gate"]["passed"], summary["gate"]
    assert summary["promoted"]["version"] == summary["train"]["version"]  # the candidate
    champion = summary["promoted"]["champion"]  # its copy in the serving model
    assert summary["ingest"]["data_hash"] and summary["live_ingest"]["rows_quarantined"] > 0
    assert settings.prediction_log_path.exists()
    scored = summary["scored_assets"]
    assert scored, "the live fleet was not scored"

    # the monitor found the biased sensors at equal life stage and retrained to challenger
    monitor = summary["monitor"]
    assert monitor["drift"], monitor
    assert (Path(settings.state_dir)).as_posix() in monitor["report_html"]
    verdict = json.loads(Path(monitor["verdict_json"]).read_text())
    assert verdict["stage"] == "champion_predicted_rul"
    assert verdict["drifted_columns"] and set(verdict["drifted_columns"]) <= BIASED, verdict
    challenger = monitor["retrained_version"]
    assert monitor["retrain"] and monitor["challenger"]
    assert challenger not in (None, summary["promoted"]["version"])
    cand = settings.candidates_model_name
    assert get_alias_version(settings, "challenger", model=cand) == challenger
    tags = version_tags(settings, challenger, model=cand)
    assert tags["trigger.monitor_run"] == monitor["monitor_run_id"]
    assert tags["trigger.report_uri"].startswith(f"runs:/{monitor['monitor_run_id']}/")
    assert get_alias_version(settings, "champion") == champion  # never promoted by itself

    server = start_server(with_api_key(isolated_env))
    asset = scored[0]
    response = httpx.post(f"{server.url}/predict", json={"asset_ids": [asset, "no-such-asset"]},
                          headers=API_KEY_HEADERS, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    good, unknown = body["predictions"]
    assert unknown["asset_id"] == "no-such-asset" and "error" in unknown
    assert good["asset_id"] == asset
    assert body["model_version"] == champion

    # The same model loaded straight from the registry, on the same online features.
    from features.store import online_features
    from training.registry import load_by_alias

    model = load_by_alias(settings, "champion")
    feats = online_features(settings, [asset])
    direct = model.predictor.predict(feats, horizon=settings.horizon)
    np.testing.assert_allclose(good["rul"], float(direct["rul"].iloc[0]), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(good["p_fail"], float(direct["p_fail"].iloc[0]), atol=1e-6)

    # The pump's loop ran too, with its own model, and one batch mixes the two types.
    pump = settings.for_type("pump")
    pumped = json.loads((pump.reports_dir / "last_run.json").read_text())
    assert pumped["gate"]["passed"], pumped["gate"]
    assert pumped["promoted"]["champion"] == get_alias_version(pump, "champion")
    pump_asset = pumped["scored_assets"][0]
    mixed = httpx.post(f"{server.url}/predict", json={"asset_ids": [asset, pump_asset]},
                       headers=API_KEY_HEADERS, timeout=30).json()
    turbofan_answer, pump_answer = mixed["predictions"]
    assert mixed["model_name"] is None  # two models answered
    assert (turbofan_answer["asset_type"], turbofan_answer["rul_unit"]) == ("turbofan", "cycles")
    assert (pump_answer["asset_type"], pump_answer["rul_unit"]) == ("pump", "hours")
    assert pump_answer["model_name"] == "twinops-rul-pump"
    assert turbofan_answer["model_name"] == "twinops-rul-turbofan"
    direct_pump = load_by_alias(pump, "champion").predictor.predict(
        online_features(pump, [pump_asset]), horizon=pump.horizon)
    np.testing.assert_allclose(pump_answer["rul"], float(direct_pump["rul"].iloc[0]),
                               rtol=1e-5, atol=1e-4)
    assert not pump_answer["stale"]  # the live pumps were observed now

    # Decisions: the fleet ranking and a recommendation over HTTP, and the CLI agrees
    ranked = httpx.post(f"{server.url}/fleet/risk", json={"asset_type": "pump"},
                        headers=API_KEY_HEADERS, timeout=60).json()
    cli = CliRunner().invoke(app, ["fleet", "-t", "pump", "--json"])
    assert cli.exit_code == 0, cli.output[-2000:]
    assert [i["asset_id"] for i in json.loads(cli.stdout)["items"]] == [
        i["asset_id"] for i in ranked["items"]]
    # the training pumps failed and never reported again: out of service, not ranked
    pumps = pumped["scored_assets"]
    assert ranked["out_of_service"] > 0 and {i["asset_id"] for i in ranked["items"]} <= set(pumps)
    top = ranked["items"][0]
    assert top["data_quality"] == "ok" and top["risk"] is not None
    rec = httpx.post(f"{server.url}/recommend", json={"asset_ids": [top["asset_id"]]},
                     headers=API_KEY_HEADERS, timeout=60).json()["recommendations"][0]
    assert rec["action"] in {"run", "plan_maintenance", "stop_now"}, rec
    assert rec["cost_rate"] <= rec["cost_rate_run_to_failure"] and rec["reasons"]
    said = CliRunner().invoke(app, ["recommend", top["asset_id"]])
    assert said.exit_code == 0 and f"{top['asset_id']} (pump): {rec['action']}" in said.output
    bad_file = Path(settings.state_dir) / "bad-assets.csv"
    bad_file.write_text(f"asset_id,failure_cost\n{top['asset_id']},-1\n")
    refused = CliRunner().invoke(app, ["assets", "import", str(bad_file)])
    assert refused.exit_code == 2

    # The fleet page: both types ranked with their actions, logged to MLflow, rendered
    from tests.integration.conftest import chromium_screenshot

    paged = CliRunner().invoke(app, ["report", "fleet", "--top", "50"])
    assert paged.exit_code == 0, paged.output[-2000:]
    page = Path(paged.stdout.split("fleet page: ")[1].split("\n")[0])
    text = page.read_text()
    assert "turbofan: the " in text and f"pump: the {len(ranked['items'])} highest risks" in text
    assert top["asset_id"] in text and rec["action"] in text
    assert "pump: open alerts" in text and "outcomes" in text and "top drivers" in text
    colours = chromium_screenshot(page, page.with_suffix(".png"), (1200, 1600))
    assert colours > 50, f"the fleet page looks blank ({colours} colours)"

    bad = httpx.post(f"{server.url}/predict", json={"asset_ids": "not-a-list"},
                     headers=API_KEY_HEADERS, timeout=30)
    assert 400 <= bad.status_code < 500, bad.text
    no_key = httpx.post(f"{server.url}/predict", json={"asset_ids": [asset]}, timeout=30)
    assert no_key.status_code == 401, no_key.text
