"""The prediction service over HTTP: a real `bentoml serve` on loopback, real Feast/MLflow state.

    module fixture: simulator fleet ─► ingest ─► features (Feast) ─► train v1, v2, v3 (MLflow),
                    in this process (its libraries are imported once)
                    champion = v1 ─► one server (API key, 0.3 s hot-swap poll, small limits)
    tests: auth · every bad-input class is a 4xx naming the field · predict fields, stale flag
           · fast online reader == Feast get_online_features · /predict_window features ==
           offline window_features · /ingest (rejects with reasons, stores, pushes) · /feedback
           · prediction log: N requests in, N rows out · hot swap under concurrent load with
           zero failures · a tampered version is refused and the old one keeps serving

The feature view TTL is 400 days: the simulator's history (2024) is stale "now", readings
ingested through the API with today's timestamps are fresh, so both sides of the flag are
checked over HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from serving.guard import key_digest
from tests.integration.conftest import (
    API_KEY_HEADERS,
    TEST_API_KEY,
    in_env,
    make_champion,
    serving,
    state_env,
    with_api_key,
)
from tests.layout import FEATURE_COLUMNS, MEASUREMENT_COLUMNS, TURBOFAN

pytestmark = pytest.mark.integration

KEY = TEST_API_KEY
AUTH = API_KEY_HEADERS
MAX_BATCH = 8
MAX_BODY = 300_000
READER_KEY = "twinops-test-reader-key"



@pytest.fixture(scope="module")
def env(tmp_path_factory):
    import os

    root = tmp_path_factory.mktemp("serving")
    env = {
        **os.environ,
        **state_env(root, n_assets=10),
        "TWINOPS_FEAST__TTL_DAYS": "400",
        "TWINOPS_SERVING__MODEL_POLL_S": "0.3",
        "TWINOPS_SERVING__MAX_BATCH": str(MAX_BATCH),
        "TWINOPS_SERVING__MAX_BODY_BYTES": str(MAX_BODY),
    }
    env = with_api_key(env)
    # a second key that may only predict (scopes: serving.api_key_scopes)
    env["TWINOPS_SERVING__API_KEY_SHA256"] = json.dumps(
        [*json.loads(env["TWINOPS_SERVING__API_KEY_SHA256"]), key_digest(READER_KEY)])
    env["TWINOPS_SERVING__API_KEY_SCOPES"] = json.dumps({key_digest(READER_KEY): ["predict"]})
    env["_VERSIONS"] = json.dumps(_build(env))
    env["_ROOT"] = str(root)
    return env


def _build(env: dict) -> list[str]:
    """Fleet, features and three trained candidate versions (champion = the first, as
    serving v1) in this process, with the server's settings in the environment while they
    are built."""
    from features.settings import get_settings
    from pipelines.flows import features_flow, ingest_flow, train_flow

    with in_env(env):
        s = get_settings()
        ingest_flow("simulator", s)
        features_flow(s)
        versions = [train_flow(settings=s).version for _ in range(3)]
        assert make_champion(s, versions[0]) == "1"
    return versions


@pytest.fixture(scope="module")
def settings(env):
    from features.settings import Settings

    return Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"],
                    feast={"ttl_days": 400})


@pytest.fixture(scope="module")
def versions(env):
    return json.loads(env["_VERSIONS"])


@pytest.fixture(scope="module")
def server(env):
    from pathlib import Path

    with serving(env, Path(env["_ROOT"]) / "server.log") as srv:
        yield srv


@pytest.fixture(scope="module")
def assets(settings):
    from features import datastore

    return sorted(set(datastore.load_readings(settings)["asset_id"]))


def post(server, path, body, headers=AUTH, **kw):
    return httpx.post(f"{server.url}{path}", json=body, headers=headers, timeout=30, **kw)


def readings_of(settings, asset):
    from features import datastore

    r = datastore.load_readings(settings)
    r = r[r["asset_id"] == asset].sort_values("cycle")
    return r


def as_json_rows(frame):
    rows = []
    for rec in frame.to_dict("records"):
        rec["timestamp"] = pd.Timestamp(rec["timestamp"]).isoformat()
        rec["cycle"] = int(rec["cycle"])
        rows.append({k: (str(v) if k == "asset_id" else v) for k, v in rec.items()})
    return rows


# ---------------------------------------------------------------- auth + probes
def test_api_key_required_except_probes(server, assets):
    body = {"asset_ids": [assets[0]]}
    assert post(server, "/predict", body, headers={}).status_code == 401
    assert post(server, "/predict", body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert post(server, "/ingest", {"readings": [{}]}, headers={}).status_code == 401
    assert post(server, "/predict", body, headers={"X-API-Key": KEY}).status_code == 200
    assert post(server, "/predict", body).status_code == 200  # Bearer
    # a key scoped to predictions may predict, and may not post failure labels or readings
    reader = {"X-API-Key": READER_KEY}
    assert post(server, "/predict", body, headers=reader).status_code == 200
    for path, other in (("/feedback", {"events": []}), ("/ingest", {"readings": []})):
        r = post(server, path, other, headers=reader)
        assert r.status_code == 403 and "predict" in r.json()["error"], r.text
    for path in ("/healthz", "/readyz", "/metrics", "/docs.json"):
        assert httpx.get(f"{server.url}{path}", timeout=10).status_code == 200, path
    ready = httpx.get(f"{server.url}/readyz", timeout=10).json()
    assert ready["ready"] is True and ready["feature_store"] == "ok"
    spec = httpx.get(f"{server.url}/docs.json", timeout=10).json()
    assert {"/predict", "/predict_window", "/ingest", "/feedback"} <= set(spec["paths"])
    from openapi_spec_validator import OpenAPIV30SpecValidator

    assert [e.message for e in OpenAPIV30SpecValidator(spec).iter_errors()] == []  # as served


# ---------------------------------------------------------------- bad input
def _reading(asset="a", cycle=1, **over):

    # every channel at the middle of its declared valid range
    middle = {ch.name: (ch.min + ch.max) / 2 for ch in (*TURBOFAN.settings, *TURBOFAN.sensors)}
    row = {"asset_id": asset, "timestamp": "2026-01-01T00:00:00+00:00", "cycle": cycle,
           **{c: middle[c] for c in MEASUREMENT_COLUMNS}}
    row.update(over)
    return row


BAD = [
    ("/predict", {"asset_ids": "a1"}, 400, "asset_ids"),  # wrong type
    ("/predict", {}, 400, "asset_ids"),  # missing field
    ("/predict", {"asset_ids": []}, 400, "asset_ids"),  # empty batch
    ("/predict", {"asset_ids": [f"a{i}" for i in range(MAX_BATCH + 1)]}, 400, "asset_ids"),
    ("/predict", {"asset_ids": ["a"], "horizon": "soon"}, 400, "horizon"),
    ("/predict", {"asset_ids": ["a"], "horizon": -1}, 400, "horizon"),
    ("/predict_window", {"readings": [_reading(sensor_3=float("nan"))]}, 400, "sensor_3"),
    ("/predict_window", {"readings": [_reading(sensor_4=float("inf"))]}, 400, "sensor_4"),
    ("/predict_window", {"readings": [_reading(sensor_99=1.0)]}, 400, "sensor_99"),
    ("/predict_window", {"readings": [{k: v for k, v in _reading().items() if k != "sensor_5"}]},
     400, "sensor_5"),
    ("/predict_window", {"readings": [_reading(cycle="x")]}, 400, "cycle"),
    ("/predict_window", {"readings": [_reading(cycle=c) for c in range(1, 4)]}, 400, "readings"),
    ("/predict_window", {"readings": []}, 400, "readings"),
    ("/feedback", {"events": [{"asset_id": "a", "event": "explosion", "cycle": 3}]}, 400,
     "event"),
    ("/feedback", {"events": [{"asset_id": "a", "event": "failure"}]}, 400, "cycle"),
    ("/feedback", {"events": []}, 400, "events"),
    ("/ingest", {"rows": []}, 400, "readings"),
    # never coerced (each was stored with a 200 and a wrong value before): 422, nothing stored
    ("/ingest", {"readings": [_reading(cycle=2**63)]}, 422, "cycle"),
    ("/ingest", {"readings": [_reading(cycle=1e20)]}, 422, "cycle"),
    ("/ingest", {"readings": [_reading(cycle=True)]}, 422, "cycle"),
    ("/ingest", {"readings": [_reading(cycle="7")]}, 422, "cycle"),
    ("/ingest", {"readings": [_reading(timestamp=1709251200)]}, 422, "timestamp"),
    ("/ingest", {"readings": [_reading(timestamp="2026-01-01T00:00:00")]}, 422, "timestamp"),
    ("/ingest", {"readings": [_reading(sensor_2=True)]}, 422, "sensor_2"),
    ("/ingest", {"readings": [_reading(asset=12345)]}, 422, "asset_id"),
    ("/ingest", {"readings": [_reading(asset=["a"])]}, 422, "asset_id"),
    ("/ingest", {"readings": [_reading(asset="a" * 10_000)]}, 422, "asset_id"),
    ("/ingest", {"readings": [_reading(asset="a\u0000b")]}, 422, "asset_id"),
    ("/predict_window", {"readings": [_reading(sensor_2=1e308)]}, 400, "sensor_2"),
    ("/fleet/risk", {"page": 0}, 400, "page"),
    ("/fleet/risk", {"page_size": 5000}, 400, "page_size"),
    ("/fleet/risk", {"asset_type": "rocket"}, 400, "asset_type"),
    ("/fleet/risk", {"horizon": "soon"}, 400, "horizon"),
    ("/recommend", {"asset_ids": []}, 400, "asset_ids"),
    ("/recommend", {"asset_ids": ["a"], "horizon": 0}, 400, "horizon"),
    ("/recommend", {"asset_ids": ["a"], "when": 1}, 400, "when"),
]


@pytest.mark.parametrize(("path", "body", "status", "field"), BAD,
                         ids=[f"{p}-{f}-{i}" for i, (p, _, _, f) in enumerate(BAD)])
def test_bad_input_is_a_4xx_naming_the_field(server, path, body, status, field):
    content = json.dumps(body, allow_nan=True)  # NaN / Infinity literals, as sloppy clients send
    r = httpx.post(f"{server.url}{path}", content=content,
                   headers={**AUTH, "Content-Type": "application/json"}, timeout=30)
    assert r.status_code == status, r.text
    assert field in r.text, r.text


def test_unparsable_and_oversized_bodies(server):
    url = f"{server.url}/predict"
    headers = {**AUTH, "Content-Type": "application/json"}
    r = httpx.post(url, content=b"{not json", headers=headers, timeout=30)
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
    r = httpx.post(url, content=b"", headers=headers, timeout=30)
    assert r.status_code == 400
    big = json.dumps({"asset_ids": ["x" * 100] * 5000}).encode()
    assert len(big) > MAX_BODY
    r = httpx.post(url, content=big, headers=headers, timeout=30)
    assert r.status_code == 413 and str(MAX_BODY) in r.json()["error"]

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(40):
            yield b" " * 10_000

    r = httpx.post(url, content=chunks(), headers=headers, timeout=30)
    assert r.status_code == 413
    # a multipart body without a boundary was a 500 in BentoML's form parser
    for path in ("/predict", "/ingest", "/feedback", "/whatif"):
        r = httpx.post(f"{server.url}{path}", content=b'{"asset_ids": ["a"]}', timeout=30,
                       headers={**AUTH, "Content-Type": "multipart/form-data"})
        assert r.status_code == 415 and "application/json" in r.json()["error"], (path, r.text)
    # 5,000 empty readings (a 10 KB body) were a 17 MB answer: the answer stays small
    empty = json.dumps({"readings": [{}] * 5000}).encode()
    for path, status in (("/predict_window", 400), ("/ingest", 422)):
        r = httpx.post(f"{server.url}{path}", content=empty, headers=headers, timeout=60)
        assert r.status_code == status and len(r.content) < 20_000, (path, len(r.content))
        assert "asset_id" in r.text
    deep = b'{"asset_ids": ' + b"[" * 1000 + b"]" * 1000 + b"}"  # a 2 KB body
    r = httpx.post(url, content=deep, headers=headers, timeout=10)
    assert r.status_code == 400 and "deeper than" in r.json()["error"]


# ---------------------------------------------------------------- predict
def test_predict_answers_every_field_and_unknown_assets_per_item(server, assets, versions):
    r = post(server, "/predict", {"asset_ids": [assets[0], "no-such-asset"], "horizon": 20})
    assert r.status_code == 200, r.text
    body = r.json()
    good, unknown = body["predictions"]
    assert unknown == {"asset_id": "no-such-asset",
                       "error": "unknown asset: not in the asset registry"}
    assert good["rul_lower"] <= good["rul"] <= good["rul_upper"]
    assert 0 < good["interval_level"] < 1 and 0 <= good["p_fail"] <= 1
    assert good["horizon"] == 20
    assert (good["model_name"], good["model_alias"]) == ("twinops-rul-turbofan", "champion")
    assert (good["asset_type"], good["rul_unit"]) == ("turbofan", "cycles")
    assert good["model_version"] == body["model_version"]
    # the simulator's history is from 2024: older than the 400-day TTL -> stale
    ts = datetime.fromisoformat(good["feature_timestamp"])
    assert good["stale"] is True and good["feature_age_s"] > 400 * 86400
    assert abs((datetime.now(UTC) - ts).total_seconds() - good["feature_age_s"]) < 60


def test_fast_online_reader_equals_feast_get_online_features(settings, assets):
    from features.online import make_online_reader
    from features.store import get_store, online_features

    store = get_store(settings)
    reader = make_online_reader(settings, store)
    ids = [*assets, "no-such-asset"]
    pd.testing.assert_frame_equal(reader.read(ids), online_features(settings, ids, store=store))
    pd.testing.assert_frame_equal(reader.read(ids[:1]),
                                  online_features(settings, ids[:1], store=store))


def test_window_features_equal_offline_features(server, settings, assets):
    from features.prediction_log import PredictionLog
    from features.transforms import START_READINGS, history_length, window_features

    asset = assets[-1]
    history = readings_of(settings, asset)
    need = history_length(settings.window)
    first = START_READINGS
    cut = len(history) - 5  # a window that ends before the asset's last reading
    assert cut - need > first  # the readings between the two parts are left out
    window = pd.concat([history.iloc[:first], history.iloc[cut - need:cut]])
    since = datetime.now(UTC) - timedelta(seconds=1)
    r = post(server, "/predict_window", {"readings": as_json_rows(window)})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["asset_id"] == asset and pred["rul"] >= 0
    offline = window_features(history, settings.type)  # the OFFLINE pipeline, full history
    expected = offline[offline["cycle"] == int(window["cycle"].iloc[-1])].iloc[0]
    log = PredictionLog(settings.prediction_log_path)
    def logged_rows():
        rows = log.read(since=since)
        return rows[rows["asset_id"] == asset] if len(rows) else rows

    logged = _wait_for(logged_rows)
    row = logged.iloc[-1]
    got = np.array([row[c] for c in FEATURE_COLUMNS], dtype=float)
    want = expected[FEATURE_COLUMNS].to_numpy(dtype=float)
    np.testing.assert_array_equal(got, want)  # bit for bit


def _wait_for(fetch, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        out = fetch()
        if len(out) or time.monotonic() > deadline:
            return out
        time.sleep(0.1)


# ---------------------------------------------------------------- ingest + feedback
def test_ingest_stores_rows_pushes_features_and_rejects_with_reasons(server, settings):
    from features import datastore
    from features.store import offline_path
    from features.transforms import history_length

    n = history_length(settings.window) + 2
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=n)
    good = [_reading("api-0001", c, timestamp=(start + timedelta(minutes=c)).isoformat(),
                     sensor_2=640.0 + 0.01 * c) for c in range(1, n + 1)]
    bad_nan = _reading("api-0001", n + 1, timestamp=(start + timedelta(minutes=n + 1)).isoformat())
    bad_nan["sensor_7"] = None
    unknown_field = _reading("api-0001", n + 2, sensor_99=3.0)
    duplicate = dict(good[3])
    content = json.dumps({"readings": [*good, bad_nan, unknown_field, duplicate]})
    r = httpx.post(f"{server.url}/ingest", content=content,
                   headers={**AUTH, "Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == body["appended"] == n
    reasons = {x["index"]: x["reason"] for x in body["rejected"]}
    assert set(reasons) == {n, n + 1, n + 2}
    assert "sensor_7" in reasons[n] and "sensor_99" in reasons[n + 1]
    assert "duplicate" in reasons[n + 2]
    assert body["features_pushed"] == ["api-0001"]
    stored = readings_of(settings, "api-0001")
    assert len(stored) == n
    offline = pd.read_parquet(offline_path(settings))
    assert (offline["asset_id"] == "api-0001").sum() == 1  # newest row appended offline
    assert any(settings.quarantine_dir.glob("quarantine-*.parquet"))

    pred = post(server, "/predict", {"asset_ids": ["api-0001"]}).json()["predictions"][0]
    assert pred["stale"] is False and pred["feature_age_s"] < 3600
    assert datetime.fromisoformat(pred["feature_timestamp"]) == start + timedelta(minutes=n)

    again = post(server, "/ingest", {"readings": good[:3]})  # idempotent re-send
    assert again.status_code == 200 and again.json()["already_stored"] == 3
    conflict = post(server, "/ingest", {"readings": [{**good[0], "sensor_2": 641.5}]})
    assert conflict.status_code == 422 and "conflicts" in conflict.text
    assert (datastore.load_readings(settings)["asset_id"] == "api-0001").sum() == n


def test_feedback_records_events(server, settings, assets):
    from features import datastore

    asset = assets[1]
    history = readings_of(settings, asset)
    by_cycle, by_time = history.iloc[-10], history.iloc[-5]  # not the run's own failure
    r = post(server, "/feedback", {"events": [
        {"asset_id": asset, "event": "maintenance", "cycle": int(by_cycle["cycle"])},
        {"asset_id": asset, "event": "failure",
         "timestamp": pd.Timestamp(by_time["timestamp"]).isoformat()},
    ]})
    assert r.status_code == 200, r.text
    assert r.json() == {"appended": 2, "received": 2, "rejected": []}
    events = datastore.load_events(settings)
    events = events[events["asset_id"] == asset].set_index("cycle")
    assert events.loc[int(by_cycle["cycle"]), "event"] == "maintenance"
    # located by timestamp: the cycle of that reading is filled in
    assert events.loc[int(by_time["cycle"]), "event"] == "failure"
    assert pd.Timestamp(events.loc[int(by_cycle["cycle"]), "timestamp"]) == pd.Timestamp(
        by_cycle["timestamp"])
    again = post(server, "/feedback", {"events": [
        {"asset_id": asset, "event": "maintenance", "cycle": int(by_cycle["cycle"])}]})
    assert again.json() == {"appended": 0, "received": 1, "rejected": []}  # recorded once
    mixed = post(server, "/feedback", {"events": [
        {"asset_id": asset, "event": "failure", "cycle": int(history.iloc[-2]["cycle"])},
        {"asset_id": "ghost", "event": "failure", "cycle": 3}]})
    assert mixed.status_code == 200, mixed.text  # the valid event is kept, the other explained
    assert mixed.json()["appended"] == 1
    assert [p["loc"] for p in mixed.json()["rejected"]] == [["events", 1]]
    assert "ghost" in mixed.json()["rejected"][0]["msg"]
    unknown = post(server, "/feedback", {"events": [
        {"asset_id": "ghost", "event": "failure", "cycle": 3}]})
    assert unknown.status_code == 422 and "ghost" in unknown.text


# ---------------------------------------------------------------- prediction log
def test_prediction_log_n_requests_in_n_rows_out(server, settings, assets):
    from concurrent.futures import ThreadPoolExecutor

    from features.prediction_log import PredictionLog

    log = PredictionLog(settings.prediction_log_path)
    marker = datetime.now(UTC)
    n = 200

    def one(i):
        return post(server, "/predict", {"asset_ids": [assets[i % len(assets)]]}).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(one, range(n)))
    assert codes == [200] * n
    deadline = time.monotonic() + 15
    while len(log.read(since=marker)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(log.read(since=marker)) == n


# ---------------------------------------------------------------- hot swap + tampering
def test_hot_swap_under_load_then_tampered_version_is_refused(server, settings, assets,
                                                              versions):
    from training.registry import get_alias_version

    # candidates c1, c2, c3; the served versions are their copies in the serving model
    c1, c2, c3 = versions
    v1 = get_alias_version(settings, "champion")
    assert post(server, "/predict", {"asset_ids": [assets[0]]}).json()["model_version"] == v1
    per_thread: list[list[str]] = [[] for _ in range(4)]
    failures, stop = [], threading.Event()

    def hammer(seen):
        with httpx.Client(headers=AUTH, timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.post(f"{server.url}/predict", json={"asset_ids": assets[:3]})
                    body = r.json()
                    if r.status_code != 200 or any("error" in p for p in body["predictions"]):
                        failures.append(r.text)
                    versions_in = {p["model_version"] for p in body["predictions"]}
                    if versions_in != {body["model_version"]}:
                        failures.append(f"mixed versions in one answer: {body}")
                    seen.append(body["model_version"])
                except Exception as exc:  # noqa: BLE001 - any failure is the finding
                    failures.append(repr(exc))

    threads = [threading.Thread(target=hammer, args=(seen,)) for seen in per_thread]
    for t in threads:
        t.start()
    time.sleep(1.0)
    v2 = make_champion(settings, c2)
    deadline = time.monotonic() + 30
    while any(not s or s[-1] != v2 for s in per_thread) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    stop.set()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
    for seen in per_thread:  # each client: v1 ... v1 v2 ... v2, never back
        assert seen[0] == v1 and seen[-1] == v2
        first_v2 = seen.index(v2)
        assert set(seen[:first_v2]) == {v1} and set(seen[first_v2:]) == {v2}

    # Tamper with v3's weights in the artifact store, then point champion at it.
    from mlflow import MlflowClient

    source = MlflowClient(settings.tracking_uri).get_model_version(
        settings.candidates_model_name, c3).source
    model_id = source.rsplit("/", 1)[-1]  # models:/m-<id>: the logged model's own folder
    weights = [p for p in settings.artifact_root.rglob("weights.safetensors")
               if model_id in p.parts]
    assert len(weights) == 1, (source, weights)
    for w in weights:
        data = bytearray(w.read_bytes())
        data[-1] ^= 0xFF
        w.write_bytes(bytes(data))
    v3 = make_champion(settings, c3)
    deadline = time.monotonic() + 30
    health = {}
    while time.monotonic() < deadline:
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
        if health["hot_swap"]["failed_version"] == v3:
            break
        time.sleep(0.2)
    assert health["hot_swap"]["failed_version"] == v3, health
    assert "sha256" in health["hot_swap"]["last_error"]
    r = post(server, "/predict", {"asset_ids": [assets[0]]})
    assert r.status_code == 200 and r.json()["model_version"] == v2
    metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
    assert f'model_version="{v2}"' in metrics and "twinops_model_info" in metrics
    assert 'twinops_model_swaps_total{outcome="refused"}' in metrics


# ---------------------------------------------------------------- decisions
def test_fleet_risk_ranks_every_registered_asset_as_predict_scores_it(server, settings):
    from features import datastore
    from features.maintenance import read_metadata_file

    registered = datastore.load_assets(settings)
    first = post(server, "/fleet/risk", {"page_size": 4})
    assert first.status_code == 200, first.text
    body = first.json()
    # every registered asset is ranked or counted out of service (failed, silent since)
    assert body["total"] + body["out_of_service"] == len(registered)
    assert body["out_of_service"] > 0  # the simulated training fleet ran to failure
    rest = post(server, "/fleet/risk", {"page_size": 4, "page": 2}).json()["items"]
    assert not {i["asset_id"] for i in body["items"]} & {i["asset_id"] for i in rest}
    risks = [i["risk"] for i in body["items"] + rest if i["risk"] is not None]
    assert risks == sorted(risks, reverse=True)
    top = body["items"][0]
    pred = post(server, "/predict", {"asset_ids": [top["asset_id"]]}).json()["predictions"][0]
    assert top["p_fail"] == pytest.approx(pred["p_fail"]) and top["rul"] == pytest.approx(
        pred["rul"])
    assert top["data_quality"] == ("stale" if pred["stale"] else "ok")
    # at a horizon every asset fails within (p_fail 1), the ranking is the criticality's:
    # one imported for the last ranked asset moves it to the top
    from features.transforms import history_length

    n = history_length(settings.window) + 2
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=n)
    for asset in ("risk-a", "risk-b"):  # two assets in service, reporting now
        rows = [_reading(asset, c, timestamp=(start + timedelta(minutes=c)).isoformat())
                for c in range(1, n + 1)]
        assert post(server, "/ingest", {"readings": rows}).status_code == 200
    long = {"horizon": 100_000, "page_size": 1000}
    scored = [i for i in post(server, "/fleet/risk", long).json()["items"] if i["risk"]]
    assert {"risk-a", "risk-b"} <= {i["asset_id"] for i in scored}
    last = scored[-1]["asset_id"]
    path = Path(settings.state_dir) / "criticality.csv"
    path.write_text(f"asset_id,criticality\n{last},1000\n")
    datastore.import_asset_metadata(settings, read_metadata_file(path))
    now_first = post(server, "/fleet/risk", long).json()["items"][0]
    assert now_first["asset_id"] == last and now_first["criticality"] == 1000


def test_recommend_prices_each_asset_and_answers_the_others_per_item(server, settings):
    ranked = post(server, "/fleet/risk", {"page_size": 3}).json()["items"]
    ids = [i["asset_id"] for i in ranked]
    r = post(server, "/recommend", {"asset_ids": [*ids, "nobody"]})
    assert r.status_code == 200, r.text
    *answers, nobody = r.json()["recommendations"]
    assert "not in the asset registry" in nobody["error"]
    for item, rec in zip(ranked, answers, strict=True):
        assert rec["asset_id"] == item["asset_id"] and rec["reasons"]
        if item["data_quality"] == "stale":
            assert rec["action"] == "inspect"
        else:
            assert rec["action"] in {"run", "plan_maintenance", "stop_now"}
            assert rec["cost_rate"] <= rec["cost_rate_run_to_failure"]


# ---------------------------------------------------------------- explanations
def test_predict_explain_returns_per_sensor_contributions_that_add_up(server, assets):
    ids = [*assets[:3], "no-such-asset"]
    r = post(server, "/predict", {"asset_ids": ids, "explain": True})
    assert r.status_code == 200, r.text
    *answered, unknown = r.json()["predictions"]
    assert "error" in unknown and "explanation" not in unknown
    for item in answered:
        e = item["explanation"]
        assert (e["method"], e["baseline"]) == ("integrated_gradients", "training_mean")
        contributions = e["contributions"]
        assert {"sensor_2", "age"} <= set(contributions)  # per channel, not per feature
        assert not any(c.startswith("sensor_2_") for c in contributions)
        assert sum(contributions.values()) == pytest.approx(item["rul"] - e["baseline_rul"],
                                                            abs=0.05)
        assert abs(e["completeness_gap"]) < 0.05
        by_size = sorted(contributions, key=lambda c: -abs(contributions[c]))
        assert [d["channel"] for d in e["top_drivers"]] == by_size[:len(e["top_drivers"])]
    plain = post(server, "/predict", {"asset_ids": ids[:1]}).json()["predictions"][0]
    assert "explanation" not in plain and plain["rul"] == pytest.approx(answered[0]["rul"])
    for bad in ("yes", 1, None):
        r = post(server, "/predict", {"asset_ids": ids[:1], "explain": bad})
        assert r.status_code == 400 and "explain" in r.text, r.text
    spec = httpx.get(f"{server.url}/docs.json", headers=AUTH, timeout=10).text
    assert '"explain"' in spec and "completeness_gap" in spec


def test_sigterm_to_twinops_serve_stops_its_server(env, settings, versions):
    """A supervisor stops `twinops serve`: the BentoML server must go with it (it was left
    running, orphaned, while the CLI exited at once)."""
    import os
    import signal
    import subprocess
    import sys

    from benchmarks.processes import free_port, wait_http_ok
    from tests.integration.conftest import REPO
    from training.registry import get_alias_version, set_alias

    # a champion that loads (the hot-swap test leaves a tampered one behind, which a fresh
    # server refuses), put back afterwards
    before = get_alias_version(settings, "champion")
    set_alias(settings, "champion", "1")  # serving v1 = candidate v1, approved in _build
    port = free_port()
    log = open(Path(env["_ROOT"]) / "twinops-serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from pipelines.cli import app; app()", "serve", "--port",
         str(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", proc, 120,
                     log_text=Path(log.name).read_text)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # every process of the group is gone
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            pytest.fail("processes of `twinops serve` outlived it")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        try:  # whatever is left of the group (nothing, when the test passed)
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()
        if before is not None:
            set_alias(settings, "champion", before)
