"""`twinops benchmark soak`: constant-rate /predict load for minutes, with /ingest running.

    tiny state (or --state-dir) ─► `bentoml serve` (API key on, as deployed)
        ├─ open-loop load: request i is due at t0 + i/rate, over `connections` connections;
        │  latency counts from the due time (a stalled server cannot hide its queue)
        ├─ an ingest client: a batch of new readings every `ingest_every_s`
        └─ a sampler: RSS of every server process every `sample_s`
    SIGTERM (the log writer flushes) ─► prediction-log rows since the start vs 200 answers
    ─► F.json + a table on stdout: per minute count, errors, p50, p99; memory growth per
       worker after warm-up; checks (zero errors, memory flat, log complete, rate held)

Why a hand-written load loop: wrk (the serve benchmark's generator) is closed-loop, so under
a stall it sends less and the latency it reports shrinks with it; wrk2, the open-loop fork,
is not packaged in Debian. A few hundred requests per second is well inside what one asyncio
client sends, and the figure that matters here is stability over time, not peak speed.
The in-run baseline is the first minute: the table gives each minute's p99 as a ratio to it.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.processes import free_port, stop_group, wait_http_ok

#: Worker RSS may grow this much from the first minute after warm-up to the last one.
MAX_MEMORY_GROWTH = 0.10
#: The server must answer at least this share of the asked rate (200s over the wall time from
#: the first request due to the last answer): a server that falls behind fails it.
MIN_RATE_HELD = 0.95


def per_minute(samples: list[tuple[float, float, str]]) -> list[dict]:
    """[(due offset s, latency ms, outcome "200" / "503" / "ReadError" ...)] ->
    one row per started minute: count, errors (anything but 200), p50 / p99 of the 200s."""
    rows: dict[int, list[tuple[float, str]]] = {}
    for due, latency, outcome in samples:
        rows.setdefault(int(due // 60), []).append((latency, outcome))
    out = []
    for minute in sorted(rows):
        ok = sorted(lat for lat, outcome in rows[minute] if outcome == "200")
        out.append({"minute": minute, "requests": len(rows[minute]),
                    "errors": sum(outcome != "200" for _, outcome in rows[minute]),
                    "p50_ms": _quantile(ok, 0.50), "p99_ms": _quantile(ok, 0.99)})
    return out


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def memory_growth(samples: list[tuple[float, int, int]], warmup_s: float) -> dict[str, float]:
    """[(time s, pid, rss bytes)] -> per pid, (median RSS in the last minute) / (median RSS
    in the first minute after `warmup_s`) - 1. A pid seen for less than two minutes after
    warm-up (a worker restarted mid-run) is reported as growth inf: a restart is not flat."""
    by_pid: dict[int, list[tuple[float, int]]] = {}
    for t, pid, rss in samples:
        if t >= warmup_s:
            by_pid.setdefault(pid, []).append((t, rss))
    end = max((t for t, _, _ in samples), default=0.0)
    growth = {}
    for pid, points in by_pid.items():
        first = [rss for t, rss in points if t < points[0][0] + 60]
        last = [rss for t, rss in points if t >= end - 60]
        if points[-1][0] - points[0][0] < 120 or not last:
            growth[str(pid)] = float("inf")
            continue
        growth[str(pid)] = statistics.median(last) / statistics.median(first) - 1
    return growth


def checks(result: dict) -> dict[str, bool]:
    growth = result["memory_growth"]
    return {
        "zero_errors": result["errors"] == 0 and result["ingest_errors"] == 0,
        "memory_flat": bool(growth) and max(growth.values()) <= MAX_MEMORY_GROWTH,
        "prediction_log_complete": result["logged_rows"] == result["ok"],
        "rate_held": result["answered_rate"] >= MIN_RATE_HELD * result["rate"],
    }


async def _load(url: str, headers: dict, assets: list[str], rate: float, seconds: float,
                connections: int) -> tuple[list[tuple[float, float, str]], float]:
    """Samples, and the seconds from the first request due to the last answer.

    One sender per connection (as wrk2 does): each takes the next request in due order, waits
    for its due time if it is early, sends it at once if late. A server that falls behind so
    shows as latency (counted from the due time), without a task per request piling up in
    the client."""
    import asyncio
    import itertools

    import httpx

    samples: list[tuple[float, float, str]] = []
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30, headers=headers) as client:
        t0 = time.perf_counter()
        order = itertools.count()

        async def sender() -> None:
            while (due := t0 + (i := next(order)) / rate) < t0 + seconds:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                try:
                    r = await client.post(url, json={"asset_ids": [assets[i % len(assets)]]})
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                samples.append((due - t0, (time.perf_counter() - due) * 1e3, outcome))

        await asyncio.gather(*(sender() for _ in range(connections)))
        return samples, time.perf_counter() - t0


def _ingest_loop(url: str, headers: dict, template: dict, every_s: float,
                 stop: threading.Event, codes: list[int]) -> None:
    """New readings of one new asset (named for this run, so a re-run on the same state
    adds a life instead of re-sending one), a batch of 10 cycles every `every_s` seconds."""
    import httpx

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    asset = f"soak-{start:%Y%m%dT%H%M%S}"
    cycle = 0
    with httpx.Client(headers=headers, timeout=60) as client:
        while not stop.wait(every_s):
            batch = []
            for _ in range(10):
                cycle += 1
                batch.append({**template, "asset_id": asset, "cycle": cycle,
                              "timestamp": (start + timedelta(seconds=cycle)).isoformat()})
            try:
                codes.append(client.post(url, json={"readings": batch}).status_code)
            except httpx.HTTPError:
                codes.append(0)


def _sample_memory(pid: int, t0: float, every_s: float, stop: threading.Event,
                   out: list[tuple[float, int, int]]) -> None:
    import psutil  # BentoML's own dependency (its process manager uses it)

    root = psutil.Process(pid)
    while not stop.wait(every_s):
        try:
            processes = root.children(recursive=True)
        except psutil.NoSuchProcess:
            return
        for p in processes:
            try:
                out.append((time.perf_counter() - t0, p.pid, p.memory_info().rss))
            except psutil.NoSuchProcess:
                pass


def command(
    out: Annotated[Path, typer.Option(help="Write the JSON figures here.")] = Path(
        "soak-benchmark.json"),
    minutes: Annotated[float, typer.Option(help="Minutes of load.")] = 10.0,
    rate: Annotated[float, typer.Option(help="/predict requests per second, constant.")] = 200.0,
    connections: Annotated[int, typer.Option(help="Client connections.")] = 64,
    ingest_every_s: Annotated[float, typer.Option(help="Seconds between /ingest batches.")] = 2.0,
    warmup_s: Annotated[float, typer.Option(help="Seconds left out of the memory baseline.")]
    = 60.0,
    sample_s: Annotated[float, typer.Option(help="Seconds between memory samples.")] = 5.0,
    workers: Annotated[int, typer.Option(help="BentoML workers (as `twinops serve`).")] = 2,
    state_dir: Annotated[Path | None, typer.Option(
        help="Existing state (champion + features); default: build a tiny one.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data dir of --state-dir.")] = None,
) -> None:
    """Constant-rate /predict with /ingest running: errors, p99 per minute, memory, log."""
    import asyncio

    from benchmarks.serve import (
        BENCH_KEY,
        _environment,
        _machine,
        build_tiny_state,
        start_service,
    )

    work = Path(tempfile.mkdtemp(prefix="twinops-bench-soak-"))
    env = _environment(work, state_dir, data_dir)
    env["BENTOML_CONFIG_OPTIONS"] = f"services.twinops.workers={workers}"
    if state_dir is None:
        build_tiny_state(env, work)
    assets, template, log = _fleet(env)
    port = free_port()
    server = start_service(env, port, work)
    stop, memory, ingest_codes = threading.Event(), [], []
    headers = {"X-API-Key": BENCH_KEY}
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/readyz", server)
        marker, t0 = datetime.now(UTC), time.perf_counter()
        threads = [threading.Thread(target=_sample_memory, daemon=True,
                                    args=(server.pid, t0, sample_s, stop, memory)),
                   threading.Thread(target=_ingest_loop, daemon=True,
                                    args=(f"{base}/ingest", headers, template, ingest_every_s,
                                          stop, ingest_codes))]
        for thread in threads:
            thread.start()
        samples, load_s = asyncio.run(_load(f"{base}/predict", headers, assets, rate, minutes * 60,
                                    connections))
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    finally:
        stop.set()
        stop_group(server)
    ok = sum(outcome == "200" for _, _, outcome in samples)
    minutes_rows = per_minute(samples)
    result = {
        "rate": rate, "minutes": minutes, "connections": connections, "workers": workers,
        "requests": len(samples), "ok": ok, "errors": len(samples) - ok,
        "error_kinds": sorted({o for _, _, o in samples if o != "200"}),
        "answered_rate": ok / load_s, "load_s": load_s,
        "ingest_batches": len(ingest_codes),
        "ingest_errors": sum(code != 200 for code in ingest_codes),
        "ingest_error_codes": sorted({code for code in ingest_codes if code != 200}),
        "logged_rows": len(log.read(since=marker)),
        "per_minute": minutes_rows,
        "memory_growth": memory_growth(memory, warmup_s),
        "rss_mb_last": {str(pid): rss / 2**20 for _, pid, rss in memory[-workers * 2:]},
        **_machine(int(minutes * 60)), "load_generator": "asyncio + httpx, open loop",
        "command": "twinops benchmark soak " + " ".join(sys.argv[3:]),
    }
    result["checks"] = checks(result)
    out.write_text(json.dumps(result, indent=1))
    _print_table(result)
    typer.echo(f"wrote {out}")


def _fleet(env: dict):
    """Assets with online features, a reading to copy for ingest, the prediction log."""
    from features import datastore
    from features.online import make_online_reader
    from features.prediction_log import PredictionLog
    from features.settings import Settings
    from features.store import get_store

    settings = Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"])
    readings = datastore.load_readings(settings)
    found = make_online_reader(settings, get_store(settings)).read(
        sorted(set(readings["asset_id"])))
    assets = [str(a) for a in found[found["found"]]["asset_id"]]
    last = readings.iloc[-1]
    template = {c: float(last[c]) for c in settings.type.measurement_columns}
    return assets, template, PredictionLog(settings.prediction_log_path)


def _print_table(r: dict) -> None:
    first = next((m["p99_ms"] for m in r["per_minute"] if m["p99_ms"]), None)
    typer.echo(f"{'minute':>6} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} "
               f"{'p99 / 1st':>9}")
    for m in r["per_minute"]:
        p50, p99 = m["p50_ms"] or float("nan"), m["p99_ms"] or float("nan")
        ratio = p99 / first if first else float("nan")
        typer.echo(f"{m['minute']:>6} {m['requests']:>9} {m['errors']:>7} {p50:8.2f} "
                   f"{p99:8.2f} {ratio:9.2f}")
    growth = ", ".join(f"{pid}: {g:+.1%}" for pid, g in r["memory_growth"].items())
    typer.echo(f"{r['requests']} requests, {r['answered_rate']:.0f}/s answered (asked "
               f"{r['rate']:.0f}/s, over {r['load_s']:.0f} s), "
               f"{r['errors']} errors {r['error_kinds']}; ingest {r['ingest_batches']} "
               f"batches, {r['ingest_errors']} errors; log rows {r['logged_rows']} for "
               f"{r['ok']} answers; worker memory growth {growth or 'not sampled'}")
    typer.echo(f"checks: {r['checks']}  ({r['cpus']} CPUs, load {r['load_avg_1m']:.1f}, "
               f"{r['date']})")
