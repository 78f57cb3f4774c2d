"""`twinops benchmark fleet-risk`: POST /fleet/risk's work on fleets of 1,000 to 10,000 assets.

    tiny state (ingest, features, train: as `twinops benchmark serve`) or --state-dir
        │ the trained fleet's online feature rows, copied to N synthetic assets
        │ (fresh timestamps, random criticality 1-5) ─► Feast push (online store)
        │                                          └─► `twinops assets import` path (registry)
        ├─ per size n: serving.fleet.fleet_risk over n assets (one vectorised model call per
        │  type, reads in batches of 900), median of --repeats ─► ms per call, µs per asset
        ├─ the route's other reads, once at the largest size: load_assets, criticality_of,
        │  last_failures
        └─ baseline, same run: one /predict-style call per asset (serving.predict.predict_assets
           with one id) on a sample ─► µs per asset
        ─► F.json + a table on stdout

Why in process and not over HTTP: the route is these function calls; at 10,000 assets the
JSON of one 50-item page is a rounding error next to them, and an HTTP client would add its
own noise. The baseline is what the fleet ranking would cost if it asked the champion one
asset at a time, as a client looping over /predict would (without the HTTP hop: a lower
bound on that cost).

Targets, and why: the ranking is read by a planner's page and by the monitor's alert pass,
once per refresh, not on a request hot path: 10,000 assets within 5 s on this 2-core
machine; cheaper per asset than one call per asset (at least 2x: both pay the same
online read, so the vectorised model call is the difference); time per asset at the
largest size within 1.5x of the smallest (linear, not worse). Where the time goes at
10,000 assets: the online read (Feast's SQLite layout holds one row per asset and
feature, ~150 per turbofan, each decoded from its ValueProto), far more than the model.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

TARGETS = {"largest_ms": 5000.0, "vs_per_asset_calls": 2.0, "per_asset_growth": 1.5}


def _median_s(fn, repeats: int) -> float:
    fn()  # warm: first reads open connections and page the tables in
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic_fleet(settings, n: int, seed: int = 0) -> list[str]:
    """n assets of settings' type whose latest features are copies of the trained fleet's,
    stamped within the last hour, registered with a criticality in 1-5. Returns their ids."""
    from datetime import UTC, datetime

    import numpy as np
    import pandas as pd

    from features import datastore
    from features.online import make_online_reader
    from features.store import get_store, offline_columns, push_features

    rng = np.random.default_rng(seed)
    store = get_store(settings)
    trained = sorted(set(datastore.load_readings(settings)["asset_id"].astype(str)))
    source = make_online_reader(settings, store).read(trained)
    source = source[source["found"]].reset_index(drop=True)
    pick = source.iloc[rng.integers(0, len(source), n)].reset_index(drop=True)
    ids = [f"bench-{i:06d}" for i in range(n)]
    pick["asset_id"] = ids
    now = pd.Timestamp(datetime.now(UTC))
    pick["timestamp"] = now - pd.to_timedelta(rng.uniform(0, 3600, n), unit="s")
    push_features(settings, pick[offline_columns(settings)], offline=False, store=store)
    datastore.import_asset_metadata(settings, pd.DataFrame({
        "asset_id": ids, "asset_type": settings.asset_type,
        "criticality": rng.integers(1, 6, n).astype(float)}))
    return ids


def measure(settings, sizes: list[int], repeats: int, sample: int) -> dict:
    """Figures of one run on a state holding at least max(sizes) synthetic assets."""
    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of
    from serving.decision_schemas import FleetRiskRequest
    from serving.fleet import fleet_risk, local_lanes
    from serving.predict import predict_assets
    from serving.schemas import PredictRequest

    kind = settings.asset_type
    lanes = local_lanes(settings, [kind])
    lane = lanes[kind]
    assets = load_assets(settings)
    bench = assets[assets["asset_id"].astype(str).str.startswith("bench-")]
    bench = bench.sort_values("asset_id").reset_index(drop=True)
    criticality = criticality_of(settings, assets)
    request = FleetRiskRequest(asset_type=kind, page_size=50)
    rows = []
    for n in sizes:
        frame = bench.iloc[:n]
        seconds = _median_s(lambda frame=frame: fleet_risk(
            request, lanes=lanes, assets=frame, criticality=criticality), repeats)
        check = fleet_risk(request, lanes=lanes, assets=frame, criticality=criticality)
        if check.total != n or check.items[0].risk is None:
            raise RuntimeError(f"fleet_risk ranked {check.total} of {n} assets")
        rows.append({"assets": n, "ms": seconds * 1e3, "us_per_asset": seconds / n * 1e6})
    from serving.fleet import READ_BATCH

    largest_ids = bench["asset_id"].astype(str).tolist()
    online_read_s = _median_s(lambda: [lane.fetch(largest_ids[i:i + READ_BATCH])
                                       for i in range(0, len(largest_ids), READ_BATCH)],
                              repeats)
    rows[-1]["online_read_ms"] = online_read_s * 1e3
    reads = {
        "load_assets_ms": _median_s(lambda: load_assets(settings), repeats) * 1e3,
        "criticality_of_ms": _median_s(lambda: criticality_of(settings, assets), repeats) * 1e3,
        "last_failures_ms": _median_s(lambda: last_failures(settings), repeats) * 1e3,
    }
    model = lane.holder.current
    ids = bench["asset_id"].astype(str).tolist()[:sample]

    def one_call_per_asset():
        for asset in ids:
            predict_assets(PredictRequest(asset_ids=[asset]), model=model,
                           fetch_features=lane.fetch, default_horizon=lane.horizon)

    per_call = _median_s(one_call_per_asset, max(1, repeats // 2)) / len(ids)
    largest, smallest = rows[-1], rows[0]
    route_ms = largest["ms"] + sum(reads.values())
    return {
        "asset_type": kind, "sizes": rows, **reads,
        "route_ms_largest": route_ms,
        "per_asset_call_us": per_call * 1e6, "per_asset_call_sample": len(ids),
        "vs_per_asset_calls": per_call * 1e6 / largest["us_per_asset"],
        "per_asset_growth": largest["us_per_asset"] / smallest["us_per_asset"],
        "targets_met": {
            f"route_ms_at_{largest['assets']}<={TARGETS['largest_ms']:g}":
                route_ms <= TARGETS["largest_ms"],
            f"vs_per_asset_calls>={TARGETS['vs_per_asset_calls']:g}":
                per_call * 1e6 / largest["us_per_asset"] >= TARGETS["vs_per_asset_calls"],
            f"per_asset_growth<={TARGETS['per_asset_growth']:g}":
                largest["us_per_asset"] / smallest["us_per_asset"]
                <= TARGETS["per_asset_growth"],
        },
    }


def command(
    out: Annotated[Path, typer.Option(help="Write the JSON figures here.")] = Path(
        "fleet-risk-benchmark.json"),
    sizes: Annotated[str, typer.Option(help="Fleet sizes, comma-separated.")] = "1000,10000",
    state_dir: Annotated[Path | None, typer.Option(
        help="Existing state with a champion (synthetic assets are added to it!); "
             "default: build a tiny one.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data dir of --state-dir.")] = None,
    repeats: Annotated[int, typer.Option(min=1, help="Timed calls per size (median).")] = 5,
    sample: Annotated[int, typer.Option(min=10, help="Assets in the one-call-per-asset "
                                        "baseline.")] = 300,
) -> None:
    """Fleet risk ranking time at 1,000 and 10,000 assets, vs one model call per asset."""
    import os
    import platform
    from datetime import UTC, datetime

    from benchmarks.serve import BUILD, REPO, _environment
    from features.settings import Settings

    try:
        wanted = sorted({int(s) for s in sizes.split(",") if s.strip()})
    except ValueError:
        raise typer.BadParameter(f"--sizes {sizes!r}: integers separated by commas") from None
    if not wanted or wanted[0] < 1:
        raise typer.BadParameter(f"--sizes {sizes!r}: at least one size >= 1")
    work = Path(tempfile.mkdtemp(prefix="twinops-bench-fleet-"))
    env = _environment(work, state_dir, data_dir)
    if state_dir is None:
        typer.echo(f"building a tiny state in {work} (ingest, features, train) ...")
        subprocess.run([sys.executable, "-c", BUILD], cwd=REPO, env=env, check=True,
                       capture_output=True, text=True, timeout=900)
    settings = Settings(state_dir=env["TWINOPS_STATE_DIR"], data_dir=env["TWINOPS_DATA_DIR"])
    start = time.perf_counter()
    synthetic_fleet(settings, wanted[-1])
    setup_s = time.perf_counter() - start
    result = measure(settings, wanted, repeats, sample)
    result.update(setup_s=setup_s, command="twinops benchmark fleet-risk --sizes " + sizes,
                  machine=f"{platform.machine()} {platform.processor() or ''}".strip(),
                  cpus=os.cpu_count(), load_avg_1m=os.getloadavg()[0],
                  date=datetime.now(UTC).isoformat(timespec="seconds"))
    out.write_text(json.dumps(result, indent=1))
    typer.echo(f"{'assets':>8} {'fleet_risk ms':>14} {'µs per asset':>13}")
    for row in result["sizes"]:
        typer.echo(f"{row['assets']:>8} {row['ms']:>14.1f} {row['us_per_asset']:>13.1f}")
    typer.echo(f"of which the online read of {wanted[-1]} assets: "
               f"{result['sizes'][-1]['online_read_ms']:.0f} ms")
    typer.echo(f"route's registry reads at {wanted[-1]}: load_assets "
               f"{result['load_assets_ms']:.1f} ms, criticality {result['criticality_of_ms']:.1f}"
               f" ms, last failures {result['last_failures_ms']:.1f} ms → whole route "
               f"{result['route_ms_largest']:.0f} ms")
    typer.echo(f"one model call per asset (baseline, {result['per_asset_call_sample']} assets): "
               f"{result['per_asset_call_us']:.0f} µs per asset → vectorised is "
               f"{result['vs_per_asset_calls']:.1f}x cheaper; per-asset growth "
               f"{result['per_asset_growth']:.2f}x from {wanted[0]} to {wanted[-1]}")
    typer.echo(f"targets: {result['targets_met']}  ({result['cpus']} CPUs, load "
               f"{result['load_avg_1m']:.1f}; setup {setup_s:.0f} s)")
    typer.echo(f"wrote {out}")
