"""`twinops` command line: a thin Typer layer over the Prefect flows.

    twinops simulate | ingest | features | train | evaluate | promote | serve | monitor | run
        │
        └─► runtime.prepare(settings) ─► pipelines.flows.<stage>_flow(...)

Everything heavy (prefect, torch, feast, mlflow, evidently, bentoml) is imported
inside the command that needs it, so `twinops --help` answers at once.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.cli import benchmark_app

app = typer.Typer(
    help="twinops: predictive-maintenance MLOps — features, physics-informed RUL models, "
    "registry, serving, drift monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
monitor_app = typer.Typer(
    help="Drift and performance monitoring (runs the monitor flow by default)."
)
app.add_typer(monitor_app, name="monitor")
app.add_typer(benchmark_app, name="benchmark")


def _settings():
    from features.settings import get_settings
    from pipelines.runtime import prepare

    return prepare(get_settings())


def _print(obj) -> None:
    if is_dataclass(obj):
        obj = asdict(obj)
    typer.echo(json.dumps(obj, indent=2, default=str))


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


@app.callback()
def root(
    state_dir: Annotated[
        Path | None, typer.Option(help="State directory (env TWINOPS_STATE_DIR).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config (env TWINOPS_CONFIG).")] = None,
) -> None:
    if state_dir is not None:
        os.environ["TWINOPS_STATE_DIR"] = str(state_dir)
    if config is not None:
        os.environ["TWINOPS_CONFIG"] = str(config)


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write readings + events into.")],
    assets: Annotated[int, typer.Option(min=1, help="Number of assets.")] = 40,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same fleet).")] = 7,
    live: Annotated[bool, typer.Option(help="In-service assets (not run to failure).")] = False,
    drift: Annotated[
        str | None, typer.Option(help="Inject drift: 'bias' (3 sensors, 1 noise std) or 'regime'.")
    ] = None,
    faults: Annotated[
        bool, typer.Option(help="Add sensor dropouts (NaN) and re-sent rows.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
) -> None:
    """Write a simulated fleet in the data contract (readings + failure events)."""
    from features.sources.loader import simulated

    if fmt not in ("parquet", "csv"):
        _fail("--format must be parquet or csv")
    try:
        readings, events = simulated(
            n_assets=assets, seed=seed, live=live, drift=drift, faults=faults
        )
    except ValueError as exc:
        _fail(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in (("readings", readings), ("events", events)):
        path = out / f"{name}.{fmt}"
        frame.to_parquet(path, index=False) if fmt == "parquet" else frame.to_csv(path, index=False)
    typer.echo(
        f"wrote {len(readings)} readings of {readings['asset_id'].nunique()} assets and "
        f"{len(events)} events to {out}"
    )


@app.command()
def ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="'simulator[:opts]', 'simulator-live[:opts]' (opts: bias|regime, faults), "
            "a C-MAPSS train_/test_FD00x.txt, "
            "or a CSV/Parquet file or folder in the data contract."
        ),
    ] = "simulator",
) -> None:
    """Validate readings, quarantine bad rows with reasons, store and version with DVC."""
    settings = _settings()
    from pipelines.flows import ingest_flow

    _print(ingest_flow(source, settings))


@app.command()
def features() -> None:
    """Build window features, write the Feast offline store, apply and materialize online."""
    settings = _settings()
    from pipelines.flows import features_flow

    _print(features_flow(settings))


@app.command()
def train(
    baseline: Annotated[bool, typer.Option(help="Data-only baseline (physics terms off).")] = False,
) -> None:
    """Train the physics-informed RUL model on the Feast training frame and register it."""
    settings = _settings()
    from pipelines.flows import train_flow

    _print(train_flow(settings, physics=not baseline))


@app.command()
def evaluate(
    version: Annotated[str | None, typer.Option(help="Model version (default: latest).")] = None,
) -> None:
    """Run the evaluation gates; a passing version gets the alias `challenger`."""
    settings = _settings()
    from pipelines.flows import evaluate_flow

    _print(evaluate_flow(version, settings))


@app.command()
def promote(
    version: Annotated[str | None, typer.Option(help="Version (default: the challenger).")] = None,
    demo_auto_approve: Annotated[
        bool, typer.Option(help="Approve automatically, recorded as a demo approval.")
    ] = False,
) -> None:
    """Move `champion` to a version (needs an approval; reviews come with the review workflow)."""
    settings = _settings()
    from pipelines.flows import promote_flow

    try:
        _print(promote_flow(version, demo_auto_approve=demo_auto_approve, settings=settings))
    except PermissionError as exc:
        _fail(str(exc))


def serve_command(settings, host: str, port: int) -> list[str]:
    """The exact command that serves the champion (also printed by `twinops run`)."""
    return [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "serving.service:TwinService",
        "--host",
        host,
        "--port",
        str(port),
        "--working-dir",
        str(Path(__file__).resolve().parents[1]),
    ]


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve `models:/<name>@champion` over HTTP with BentoML (POST /predict)."""
    settings = _settings()
    cmd = serve_command(settings, host or settings.serving.host, port or settings.serving.port)
    typer.echo("$ " + shlex.join(cmd))
    raise typer.Exit(subprocess.call(cmd, env=os.environ.copy()))


@monitor_app.callback(invoke_without_command=True)
def monitor(
    ctx: typer.Context,
    no_retrain: Annotated[bool, typer.Option(help="Report only; never start a retrain.")] = False,
) -> None:
    """Drift of logged prediction inputs vs the training reference; drift → retrain."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    from pipelines.monitor_flow import monitor_flow

    _print(monitor_flow(settings, retrain_on_drift=not no_retrain))


@app.command()
def run(
    drift: Annotated[
        str | None, typer.Option(help="Inject drift into the live fleet: 'bias' or 'regime'.")
    ] = None,
) -> None:
    """The whole loop on the simulator: ingest → features → train → evaluate → promote →
    score → monitor (→ retrain)."""
    settings = _settings()
    from pipelines.loop import run_flow
    from pipelines.summary import where_to_look

    summary = run_flow(settings, live_drift=drift)
    typer.echo(
        where_to_look(
            settings, summary, serve_command(settings, settings.serving.host, settings.serving.port)
        )
    )


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
