"""`twinops benchmark serve`: latency and throughput of POST /predict, and an MLflow baseline.

    state (given, or a tiny fleet built by the flows) ─► champion in MLflow, features in Feast
        │
        ├─ in-process: Feast get_online_features vs features.online reader (ms per asset)
        ├─ `bentoml serve serving.service:TwinService` on loopback (API key on, as deployed)
        │     wrk -c1  ─► p50_ms, p99_ms, rps_1        wrk -c32 ─► rps_32 (+ its p50/p99)
        └─ `mlflow models serve -m models:/<name>@champion --env-manager local`
              wrk -c32 on /invocations, same features ─► baseline_rps_32
        ─► F.json + a table on stdout

Why wrk: a Python client (thread pool, httpx) saturates a core before a
~1 ms server does, so it would measure itself. wrk (C, epoll) with a Lua
script for the POST body keeps the load generator out of the figure. On a
2-core machine wrk still shares the CPU with the server: the figures are a
lower bound of what the service does on its own cores.
The /predict request is one asset whose features come from the SQLite online
store — the path an app hits; the baseline gets the same feature row in the
body (MLflow's server has no feature store), so it does strictly less work.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.processes import free_port, stop_group, wait_http_ok

REPO = Path(__file__).resolve().parents[1]
BENCH_KEY = "benchmark-key"
TARGETS = {"p50_ms": 2.0, "p99_ms": 5.0, "rps_32": 1000.0, "vs_baseline": 1.5}

#: The served state: one candidate through the gates, then the demo's recorded automatic
#: approval (the embedded default; serving loads only an approved champion).
BUILD = """
from features.settings import get_settings
from pipelines.flows import evaluate_flow, features_flow, ingest_flow, promote_flow, train_flow
s = get_settings()
ingest_flow("simulator", s)
features_flow(s)
version = train_flow(settings=s).version
evaluate_flow(version, s)
promote_flow(version, demo_auto_approve=True, settings=s)
"""

LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{headers}
"""


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict:
    """p50/p99 (ms), requests/s and errors from `wrk --latency` output."""
    out: dict = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        out[f"p{pct}_ms"] = float(value) * _UNIT[unit]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(rps.group(1)) if rps else 0.0
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors:.*", text)
    out["non_2xx"] = int(bad.group(1)) if bad else 0
    out["socket_errors"] = errors.group(0) if errors else None
    return out


def run_wrk(url: str, body: dict, headers: dict, connections: int, seconds: int,
            workdir: Path) -> dict:
    lines = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}"
                      for k, v in headers.items())
    script = workdir / f"post-{connections}.lua"
    script.write_text(LUA.format(body=json.dumps(json.dumps(body)), headers=lines))
    threads = min(connections, 2)
    done = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                           "--latency", "-s", str(script), url],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    result = parse_wrk(done.stdout)
    if result["non_2xx"]:
        raise RuntimeError(f"{url}: {result['non_2xx']} non-2xx answers:\n{done.stdout}")
    return result


def _median_ms(fn, n: int = 200) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def command(
    out: Annotated[Path, typer.Option(help="Write the JSON figures here.")] = Path(
        "serve-benchmark.json"),
    state_dir: Annotated[Path | None, typer.Option(
        help="Existing state (champion + features); default: build a tiny one.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data dir of --state-dir.")] = None,
    seconds: Annotated[int, typer.Option(help="Seconds per wrk run.")] = 10,
    baseline: Annotated[bool, typer.Option(help="Also measure `mlflow models serve`.")] = True,
    workers: Annotated[int, typer.Option(help="BentoML workers (as `twinops serve`).")] = 2,
) -> None:
    """POST /predict p50/p99 at 1 client, req/s at 1 and 32, vs `mlflow models serve`."""
    if shutil.which("wrk") is None:
        raise typer.BadParameter("wrk is not installed (Debian: apt-get install -y wrk)")
    work = Path(tempfile.mkdtemp(prefix="twinops-bench-serve-"))
    env = _environment(work, state_dir, data_dir)
    env["BENTOML_CONFIG_OPTIONS"] = f"services.twinops.workers={workers}"
    if state_dir is None:
        build_tiny_state(env, work)
    asset, features, reader_ms = _features(env)
    result: dict = {"asset_id": asset, **reader_ms}

    port = free_port()
    server = start_service(env, port, work)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", server)
        url, body = f"http://127.0.0.1:{port}/predict", {"asset_ids": [asset]}
        headers = {"X-API-Key": BENCH_KEY}
        run_wrk(url, body, headers, 8, 2, work)  # warm-up
        one = run_wrk(url, body, headers, 1, seconds, work)
        many = run_wrk(url, body, headers, 32, seconds, work)
    finally:
        stop_group(server)
    result.update(p50_ms=one["p50_ms"], p99_ms=one["p99_ms"], rps_1=one["rps"],
                  rps_32=many["rps"], p50_ms_32=many["p50_ms"], p99_ms_32=many["p99_ms"])

    if baseline:
        result.update(_baseline(env, features, seconds, work))
    result.update(_machine(seconds), workers=workers)
    checks = {
        "p50_ms<=2": result["p50_ms"] <= TARGETS["p50_ms"],
        "p99_ms<=5": result["p99_ms"] <= TARGETS["p99_ms"],
        "rps_32>=1000": result["rps_32"] >= TARGETS["rps_32"],
    }
    if result.get("baseline_rps_32"):
        result["speedup_vs_baseline_32"] = result["rps_32"] / result["baseline_rps_32"]
        checks["rps_32>=1.5x_baseline"] = result["speedup_vs_baseline_32"] >= 1.5
    result["targets_met"] = checks
    out.write_text(json.dumps(result, indent=1))
    _print_table(result)
    typer.echo(f"wrote {out}")


def start_service(env: dict, port: int, work: Path) -> subprocess.Popen:
    """`bentoml serve` of the twinops service on loopback, in its own process group (for
    stop_group), logging to `work`/bentoml.log."""
    return subprocess.Popen(
        [sys.executable, "-m", "bentoml", "serve", "serving.service:TwinService", "--host",
         "127.0.0.1", "--port", str(port), "--working-dir", str(REPO)],
        cwd=REPO, env=env, stdout=open(work / "bentoml.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True)


def build_tiny_state(env: dict, work: Path) -> None:
    """Ingest, features and a champion for a 10-asset simulated fleet, in `env`'s state."""
    typer.echo(f"building a tiny state in {work} (ingest, features, train) ...")
    done = subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"building the state failed ({done.returncode}):\n"
                           f"{done.stderr[-4000:]}")


def _environment(work: Path, state_dir: Path | None, data_dir: Path | None) -> dict:
    import hashlib

    env = {**os.environ,
           "TWINOPS_STATE_DIR": str(state_dir or work / "state"),
           "TWINOPS_DATA_DIR": str(data_dir or (work / "data" if state_dir is None
                                                  else Path(state_dir).parent / "data")),
           "BENTOML_HOME": str(work / "bentoml"),
           "PREFECT_HOME": str(work / "prefect"),
           "TWINOPS_SERVING__AUTH_ENABLED": "true",
           "TWINOPS_SERVING__API_KEY_SHA256": json.dumps(
               [hashlib.sha256(BENCH_KEY.encode()).hexdigest()]),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    if state_dir is None:
        env.update({"TWINOPS_SIMULATOR__N_ASSETS": "10", "TWINOPS_TRAINING__MAX_EPOCHS": "2",
                    "TWINOPS_CONFIG": str(work / "none.yaml")})
    env.pop("PREFECT_API_URL", None)
    return env


def _features(env: dict) -> tuple[str, dict, dict]:
    """An asset with online features, its feature row, and the two online read paths' cost."""
    from features import datastore
    from features.online import make_online_reader
    from features.settings import Settings
    from features.store import get_store, online_features

    settings = Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"])
    store = get_store(settings)
    reader = make_online_reader(settings, store)
    assets = sorted(set(datastore.load_readings(settings)["asset_id"]))
    found = reader.read(assets)
    asset = str(found[found["found"]]["asset_id"].iloc[0])
    row = found[found["asset_id"] == asset].iloc[0]
    features = {c: (int(row[c]) if c == "cycle" else float(row[c]))
                for c in settings.type.feature_columns}
    costs = {
        "feast_get_online_features_ms": _median_ms(
            lambda: online_features(settings, [asset], store=store)),
        "fast_reader_ms": _median_ms(lambda: reader.rows([asset])),
    }
    return asset, features, costs


def _baseline(env: dict, features: dict, seconds: int, work: Path) -> dict:
    from features.settings import Settings

    settings = Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"])
    port = free_port()
    menv = {**env, "MLFLOW_TRACKING_URI": settings.tracking_uri,
            "MLFLOW_REGISTRY_URI": settings.tracking_uri}
    proc = subprocess.Popen(
        ["mlflow", "models", "serve", "-m", f"models:/{settings.model_name}@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "-p", str(port)],
        cwd=work, env=menv, stdout=open(work / "mlflow.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True)
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/ping", proc)
        url = f"http://127.0.0.1:{port}/invocations"
        body = {"dataframe_split": {"columns": list(features), "data": [list(features.values())]}}
        run_wrk(url, body, {}, 8, 2, work)  # warm-up
        one = run_wrk(url, body, {}, 1, seconds, work)
        many = run_wrk(url, body, {}, 32, seconds, work)
    finally:
        stop_group(proc)
    return {"baseline_p50_ms": one["p50_ms"], "baseline_p99_ms": one["p99_ms"],
            "baseline_rps_1": one["rps"], "baseline_rps_32": many["rps"]}


def _machine(seconds: int) -> dict:
    return {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
            "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0],
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds_per_run": seconds, "load_generator": "wrk"}


def _print_table(r: dict) -> None:
    rows = [
        ("POST /predict, 1 client", r["p50_ms"], r["p99_ms"], r["rps_1"]),
        ("POST /predict, 32 clients", r["p50_ms_32"], r["p99_ms_32"], r["rps_32"]),
    ]
    if "baseline_rps_32" in r:
        rows += [("mlflow models serve, 1 client", r["baseline_p50_ms"], r["baseline_p99_ms"],
                  r["baseline_rps_1"]),
                 ("mlflow models serve, 32 clients", None, None, r["baseline_rps_32"])]
    typer.echo(f"{'':34} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    for name, p50, p99, rps in rows:
        fmt = lambda v: f"{v:8.2f}" if v is not None else f"{'':8}"  # noqa: E731
        typer.echo(f"{name:34} {fmt(p50)} {fmt(p99)} {rps:8.0f}")
    typer.echo(f"online read, 1 asset: Feast get_online_features "
               f"{r['feast_get_online_features_ms']:.2f} ms, direct reader "
               f"{r['fast_reader_ms']:.3f} ms")
    typer.echo(f"targets: {r['targets_met']}  ({r['cpus']} CPUs, load {r['load_avg_1m']:.1f})")
