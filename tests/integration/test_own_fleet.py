"""A user's own fleet, declared only in YAML, through the whole loop with no code change.

    types/fan.yaml (3 sensors, one optional; a reading a minute; RUL in hours)
    fleet.csv + fleet_events.csv (failures by time only) ─► `twinops ingest -t fan` ─► features
        ─► train ─► evaluate ─► promote (demo approval)
    live.csv (in service) ─► ingest ─► features ─► a real `bentoml serve`:
        POST /predict answers from twinops-rul-fan, in hours; a feed that stopped is stale
        POST /ingest with the optional sensor dead (null) is stored, its features pushed
        POST /feedback maintenance, then /ingest: the asset's new life starts at age 1
    `twinops monitor -t fan --no-retrain` reads the logged predictions of the fan model
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.integration.conftest import API_KEY_HEADERS, REPO, with_api_key

pytestmark = pytest.mark.integration

FAN = """
name: fan
description: Ventilation fan with a bearing that wears, a reading a minute.
time_index: timestamp
sampling_period_s: 60
rul_unit: hours
rul_cap: 4
window: 20
horizon: 0.5
stale_after_periods: 5
failure_modes: [bearing_wear]
settings:
  - {name: load, unit: kW, min: 0, max: 100}
sensors:
  - {name: vibration, unit: mm/s, min: 0, max: 100}
  - {name: bearing_temp, unit: degC, min: -40, max: 200, optional: true}
  - {name: current, unit: A, min: 0, max: 500}
"""


def _fan(rng, asset: str, life: int, start: datetime, upto: int | None = None) -> pd.DataFrame:
    """One fan's readings, one a minute: its bearing wears as (t/life)^2."""
    n = upto or life
    wear = (np.arange(1, n + 1) / life) ** 2
    load = np.repeat(rng.choice([30.0, 45.0, 60.0], size=n // 30 + 1), 30)[:n]  # duty cycles
    return pd.DataFrame({
        "asset_id": asset,
        "timestamp": [start + timedelta(minutes=k) for k in range(n)],
        "load": load,
        "vibration": 2.0 + 6.0 * wear + rng.normal(0, 0.1, n),
        "bearing_temp": 40.0 + 25.0 * wear + 0.05 * load + rng.normal(0, 0.2, n),
        "current": 10.0 + 2.0 * wear + 0.02 * load + rng.normal(0, 0.03, n),
    })


def _write_fleet(folder, rng):
    start = datetime(2025, 6, 1, tzinfo=UTC)
    fans, events = [], []
    for i in range(16):
        life = int(rng.integers(120, 300))
        fan = _fan(rng, f"fan-{i:02d}", life, start + timedelta(hours=6 * i))
        fans.append(fan)
        events.append({"asset_id": f"fan-{i:02d}", "timestamp": fan["timestamp"].iloc[-1],
                       "event": "failure"})
    pd.concat(fans).to_csv(folder / "fleet.csv", index=False)
    pd.DataFrame(events).to_csv(folder / "fleet_events.csv", index=False)
    # in service: last readings a minute ago, except one fan whose feed stopped 2 hours ago
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    live = []
    for i in range(6):
        life, seen = int(rng.integers(150, 300)), int(rng.integers(60, 120))
        end = now - (timedelta(hours=2) if i == 5 else timedelta(minutes=1))
        live.append(_fan(rng, f"live-{i:02d}", life, end - timedelta(minutes=seen - 1), seen))
    pd.concat(live).to_csv(folder / "live.csv", index=False)


def _cli(*args):
    """`twinops ARGS` in a subprocess (the session's Prefect server, this test's state)."""
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=REPO,
                          env=dict(os.environ), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _json(output: str):
    """The JSON a command printed (Prefect's progress lines around it aside)."""
    start = output.index("{\n") if output.startswith("{\n") else output.index("\n{\n") + 1
    return json.JSONDecoder().raw_decode(output[start:])[0]


def test_a_fleet_declared_only_in_yaml_goes_through_the_whole_loop(isolated_env, start_server,
                                                                   tmp_path, monkeypatch):
    (tmp_path / "types").mkdir()
    (tmp_path / "types" / "fan.yaml").write_text(FAN)
    monkeypatch.setenv("TWINOPS_ASSET_TYPES_DIR", str(tmp_path / "types"))
    _write_fleet(tmp_path, np.random.default_rng(5))

    assert "fan: Ventilation fan" in _cli("asset-types")
    ingest = _json(_cli("ingest", str(tmp_path / "fleet.csv"), "--asset-type", "fan"))
    assert ingest["asset_type"] == "fan" and ingest["rows_quarantined"] == 0
    assert ingest["events_appended"] == 16  # their cycles derived from their times
    _cli("features", "-t", "fan")
    trained = _json(_cli("train", "-t", "fan"))
    verdict = _json(_cli("evaluate", "-t", "fan"))
    assert verdict["passed"], verdict
    promoted = _json(_cli("promote", "-t", "fan", "--demo-auto-approve"))
    assert promoted["version"] == trained["version"]  # the candidate, copied to serving
    _cli("ingest", str(tmp_path / "live.csv"), "-t", "fan")
    _cli("features", "-t", "fan")

    from features.settings import get_settings

    settings = get_settings().for_type("fan")
    assert settings.model_name == "twinops-rul-fan"
    server = start_server(with_api_key(dict(isolated_env, TWINOPS_ASSET_TYPES_DIR=str(
        tmp_path / "types"))))

    def predict(ids):
        r = httpx.post(f"{server.url}/predict", json={"asset_ids": ids},
                       headers=API_KEY_HEADERS, timeout=30)
        assert r.status_code == 200, r.text
        return {p["asset_id"]: p for p in r.json()["predictions"]}

    answers = predict(["live-00", "live-05", "sim-0001"])
    fresh, stopped = answers["live-00"], answers["live-05"]
    assert (fresh["asset_type"], fresh["rul_unit"]) == ("fan", "hours")
    assert fresh["model_name"] == "twinops-rul-fan"
    assert fresh["model_version"] == promoted["champion"]
    assert 0.0 <= fresh["rul"] <= 4.0 and fresh["horizon"] == 0.5
    assert not fresh["stale"] and stopped["stale"]  # 2 h without a reading: 5 periods is 5 min
    assert "error" in answers["sim-0001"]           # not registered

    # A dead optional sensor: the readings are stored and the asset's features move on.
    last = pd.read_csv(tmp_path / "live.csv").query("asset_id == 'live-00'").iloc[-1]
    t0 = pd.Timestamp(last["timestamp"])
    dead = [{"asset_id": "live-00", "timestamp": (t0 + pd.Timedelta(minutes=k)).isoformat(),
             "load": 45.0, "vibration": 5.0, "bearing_temp": None, "current": 11.0}
            for k in (1, 2, 3)]
    r = httpx.post(f"{server.url}/ingest", json={"readings": dead}, headers=API_KEY_HEADERS,
                   timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3 and r.json()["rejected"] == []
    after = predict(["live-00"])["live-00"]
    assert pd.Timestamp(after["feature_timestamp"]) == t0 + pd.Timedelta(minutes=3)
    from features.datastore import load_readings

    stored = load_readings(settings)
    assert stored[stored["asset_id"] == "live-00"]["bearing_temp"].isna().sum() == 3

    # A maintenance renews the fan: the readings after it are a new life, from age 1.
    r = httpx.post(f"{server.url}/feedback", headers=API_KEY_HEADERS, timeout=60, json={
        "events": [{"asset_id": "live-00", "event": "maintenance",
                    "timestamp": (t0 + pd.Timedelta(minutes=3)).isoformat()}]})
    assert r.status_code == 200, r.text
    renewed = [{"asset_id": "live-00", "timestamp": (t0 + pd.Timedelta(minutes=k)).isoformat(),
                "load": 30.0, "vibration": 2.0, "bearing_temp": 40.0, "current": 10.0}
               for k in (4, 5)]
    r = httpx.post(f"{server.url}/ingest", json={"readings": renewed},
                   headers=API_KEY_HEADERS, timeout=60)
    assert r.status_code == 200, r.text
    from features.store import online_features

    row = online_features(settings, ["live-00"]).iloc[0]
    assert row["age"] == 2.0 and row["vibration_vs_start"] == 0.0

    report = _json(_cli("monitor", "-t", "fan", "--no-retrain"))
    verdict = json.loads(open(report["verdict_json"]).read())
    assert verdict["n_current_assets"] >= 1 and not report["retrain"], verdict
    assert {"vibration_mean", "bearing_temp_mean", "current_mean", "load"} <= set(
        verdict["columns"]), verdict["columns"]
