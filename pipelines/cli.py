"""`twinops` command line: a thin Typer layer over the Prefect flows.

    twinops simulate | ingest | features | train | evaluate | promote | serve | monitor | run
    twinops assets | fleet | recommend (pipelines.decisions_cli)
        │
        └─► runtime.prepare(settings) ─► pipelines.flows.<stage>_flow(...)

Everything heavy (prefect, torch, feast, mlflow, evidently, bentoml) is imported
inside the command that needs it, so `twinops --help` answers at once.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Annotated

import typer

from benchmarks.cli import benchmark_app
from pipelines import access_cli, alerts_cli, checks_cli, decisions_cli, whatif_cli, work_orders_cli

app = typer.Typer(
    help="twinops: predictive-maintenance MLOps — features, physics-informed RUL models, "
    "registry, serving, drift monitoring.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # Plain help: Rich's help renderer imports rich + markdown-it, which alone would more
    # than double the time `twinops --help` takes (docs/experiments.md).
    rich_markup_mode=None,
)
monitor_app = typer.Typer(
    help="Drift and performance monitoring (runs the monitor flow by default).",
    rich_markup_mode=None,
)
app.add_typer(monitor_app, name="monitor")
app.add_typer(benchmark_app, name="benchmark")
review_app = typer.Typer(help="Promotion reviews: evidence, gates, four-eyes approval, rollback.",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(review_app, name="review")
app.add_typer(decisions_cli.assets_app, name="assets")
app.command("fleet")(decisions_cli.fleet)
app.command("recommend")(decisions_cli.recommend)
app.add_typer(decisions_cli.report_app, name="report")
app.add_typer(alerts_cli.app, name="alerts")
app.add_typer(work_orders_cli.app, name="work-orders")
app.command("whatif")(whatif_cli.whatif)
app.add_typer(checks_cli.app, name="check")
app.add_typer(access_cli.app, name="access")


def _settings():
    from pydantic import ValidationError

    from features.settings import get_settings
    from pipelines.runtime import prepare

    try:
        settings = get_settings()
    except ValidationError as exc:  # a bad --profile, twinops.yaml key or TWINOPS_* value
        _fail(f"invalid settings: {exc}")
    return prepare(settings)


#: `--asset-type` of every command that works on one asset type (features.asset_types).
AssetTypeOption = Annotated[
    str | None,
    typer.Option("--asset-type", "-t", help="Asset type (see `twinops asset-types`); default: "
                 "every type where that makes sense, else settings' asset_type."),
]


def _one_type(asset_type: str | None):
    """Settings for one asset type: the given one, else settings' asset_type."""
    settings = _settings()
    if asset_type is None:
        return settings
    try:
        return settings.for_type(asset_type)
    except ValueError as exc:
        _fail(str(exc))


def _types_with(asset_type: str | None, has) -> list:
    """Settings per asset type: the given one, else every declared type for which
    `has(settings)` holds (stored readings, a registered model, ...)."""
    settings = _settings()
    if asset_type is not None:
        return [_one_type(asset_type)]
    found = [settings.for_type(t) for t in sorted(settings.declared_types())]
    found = [s for s in found if has(s)]
    if not found:
        _fail("no asset type has what this command needs yet (run `twinops ingest` first)")
    return found


def _has_readings(settings) -> bool:
    from features.datastore import READINGS_FILE

    return (settings.raw_dir / READINGS_FILE).exists()


def _has_model(settings) -> bool:
    from training.registry import latest_version

    return latest_version(settings, model=settings.candidates_model_name) is not None


def _champions(settings) -> list[str]:
    """The declared asset types whose model has a `champion` alias."""
    from training.registry import get_alias_version

    return [name for name in sorted(settings.declared_types())
            if get_alias_version(settings.for_type(name), "champion") is not None]


def _print_per_type(results: dict) -> None:
    """One result: as is; several (one per type): {type: result}."""
    _print(next(iter(results.values())) if len(results) == 1 else
           {k: asdict(v) if is_dataclass(v) else v for k, v in results.items()})


def _print(obj) -> None:
    if is_dataclass(obj):
        obj = asdict(obj)
    typer.echo(json.dumps(obj, indent=2, default=str))


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=code)


@app.callback()
def root(
    state_dir: Annotated[
        Path | None, typer.Option(help="State directory (env TWINOPS_STATE_DIR).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="YAML config (env TWINOPS_CONFIG).")] = None,
    profile: Annotated[
        str | None,
        typer.Option(help="Smaller defaults: 'demo' (the loop in about a minute) or 'tiny' "
                          "(the tests' budget); env TWINOPS_PROFILE."),
    ] = None,
) -> None:
    if profile is not None:
        os.environ["TWINOPS_PROFILE"] = profile
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
    asset_type: AssetTypeOption = None,
) -> None:
    """Write a simulated fleet of an asset type (readings + failure events)."""
    from features.sources.loader import simulated

    if fmt not in ("parquet", "csv"):
        _fail("--format must be parquet or csv")
    settings = _one_type(asset_type)
    try:
        readings, events = simulated(
            n_assets=assets, seed=seed, live=live, drift=drift, faults=faults,
            asset_type=settings.asset_type, cache_dir=settings.simulator_cache,
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
    asset_type: AssetTypeOption = None,
) -> None:
    """Validate readings of an asset type, quarantine bad rows with reasons, store and
    version with DVC (a simulator source, with no --asset-type: every simulated type)."""
    from features.sources.loader import SIMULATED_TYPES
    from pipelines.flows import ingest_flow

    simulator = source.partition(":")[0] in ("simulator", "simulator-live")
    if asset_type is None and simulator:
        per_type = _types_with(None, lambda s: s.asset_type in SIMULATED_TYPES)
    else:
        per_type = [_one_type(asset_type)]
    try:
        _print_per_type({s.asset_type: ingest_flow(source, s) for s in per_type})
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def features(asset_type: AssetTypeOption = None) -> None:
    """Build window features, write the Feast offline store, apply and materialize online
    (default: every type with stored readings)."""
    from pipelines.flows import features_flow

    _print_per_type({s.asset_type: features_flow(s) for s in _types_with(asset_type,
                                                                          _has_readings)})


@app.command()
def train(
    baseline: Annotated[
        bool, typer.Option(help="Data-only baseline (physics loss terms and virtual assets off).")
    ] = False,
    asset_type: AssetTypeOption = None,
) -> None:
    """Train the physics-informed RUL model of an asset type on its Feast training frame and
    register it as `<prefix>-<type>` (default: every type with stored readings)."""
    from pipelines.flows import train_flow

    _print_per_type({s.asset_type: train_flow(s, physics=not baseline)
                     for s in _types_with(asset_type, _has_readings)})


@app.command()
def evaluate(
    version: Annotated[str | None, typer.Option(help="Model version (default: latest).")] = None,
    asset_type: AssetTypeOption = None,
) -> None:
    """Run the evaluation gates; a passing version gets the alias `challenger` (default:
    the latest version of every type with a registered model)."""
    from pipelines.flows import evaluate_flow

    per_type = [_one_type(asset_type)] if version else _types_with(asset_type, _has_model)
    results = {s.asset_type: evaluate_flow(version, s) for s in per_type}
    _print_per_type(results)
    refused = [f"{kind} v{r['version']}" for kind, r in results.items() if not r["passed"]]
    if refused:  # a script that chains evaluate and approve must not go on
        _fail(f"the gates refused {', '.join(refused)}", code=3)


@app.command()
def promote(
    version: Annotated[str | None, typer.Option(help="Version (default: the challenger).")] = None,
    demo_auto_approve: Annotated[
        bool, typer.Option(help="Approve automatically, recorded as a demo approval.")
    ] = False,
    asset_type: AssetTypeOption = None,
) -> None:
    """Move `champion` to a version (needs an approval; reviews come with the review workflow)."""
    settings = _one_type(asset_type)
    from pipelines.flows import promote_flow

    try:
        _print(promote_flow(version, demo_auto_approve=demo_auto_approve, settings=settings))
    except PermissionError as exc:
        _fail(str(exc))


def serve_command(settings, host: str, port: int) -> list[str]:
    """The BentoML command `twinops serve` runs (printed before it starts)."""
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
    if not _champions(settings):
        # A server with nothing to serve would fail in every worker and BentoML would restart
        # them forever; a supervisor is better told once, with the way out.
        typer.echo("error: no asset type has a 'champion' model to serve: promote one first "
                   "(twinops review approve VERSION, or twinops promote --demo-auto-approve)",
                   err=True)
        raise typer.Exit(2)
    cmd = serve_command(settings, host or settings.serving.host, port or settings.serving.port)
    env = os.environ.copy()
    env.setdefault("BENTOML_CONFIG_OPTIONS", f"services.twinops.workers={settings.serving.workers}")
    typer.echo(f"$ BENTOML_CONFIG_OPTIONS={env['BENTOML_CONFIG_OPTIONS']} " + shlex.join(cmd))
    sys.stdout.flush()
    # exec, not a child: the server IS this process, so a supervisor's SIGTERM reaches it and
    # it exits with its server (a child was orphaned when `twinops serve` was stopped)
    os.execve(cmd[0], cmd, env)


@monitor_app.callback(invoke_without_command=True)
def monitor(
    ctx: typer.Context,
    no_retrain: Annotated[bool, typer.Option(help="Report only; never start a retrain.")] = False,
    asset_type: AssetTypeOption = None,
) -> None:
    """Drift of logged prediction inputs vs the training reference; drift → retrain (default:
    every type with a registered model)."""
    if ctx.invoked_subcommand is not None:
        return
    from pipelines.monitor_flow import monitor_flow

    _print_per_type({s.asset_type: monitor_flow(s, retrain_on_drift=not no_retrain)
                     for s in _types_with(asset_type, _has_model)})


@monitor_app.command("drift")
def monitor_drift(
    reference: Annotated[str, typer.Option(help="Reference source: a path the ingest reads, "
                                                "or 'predictions[:SINCE[/UNTIL]]'.")],
    current: Annotated[str, typer.Option(help="Current source (same forms as --reference).")],
    out: Annotated[Path, typer.Option(help="Verdict JSON; the Evidently report goes beside it.")],
    html: Annotated[bool, typer.Option(help="Render the Evidently HTML + JSON report.")] = True,
    champion: Annotated[
        bool, typer.Option(help="Use the champion's predicted RUL as life stage if one exists.")
    ] = True,
    asset_type: AssetTypeOption = None,
) -> None:
    """Life-stage-matched drift + data quality of CURRENT vs REFERENCE → F.json (+ MLflow)."""
    settings = _one_type(asset_type)
    from monitoring.check import champion_stage, run_check
    from monitoring.sources import load_monitored

    try:
        ref, cur = load_monitored(reference, settings), load_monitored(current, settings)
        verdict = run_check(settings, ref, cur, out, render=html,
                            champion=champion_stage(settings) if champion else None)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        _fail(str(exc))
    _print(verdict.headline())


@monitor_app.command("errors")
def monitor_errors(
    bucket: Annotated[str, typer.Option(help="Trend bucket (pandas offset, e.g. 1D, 1h).")] = "1D",
    asset_type: AssetTypeOption = None,
) -> None:
    """Realized RUL errors of logged predictions from failure feedback (RMSE per version),
    and the outcomes per version: warning lead time, missed failures, false alarms,
    realised cost vs run to failure (docs/alerts.md#outcomes)."""
    settings = _one_type(asset_type)
    from monitoring.outcomes import outcomes_of
    from monitoring.performance import realized_errors, rmse_trend

    errors = realized_errors(settings)
    _print({"predictions_with_truth": len(errors), "trend": rmse_trend(errors, bucket),
            "outcomes": outcomes_of(settings)})


@monitor_app.command("serve")
def monitor_serve(
    cron: Annotated[
        str | None, typer.Option(help="Cron schedule, e.g. '0 * * * *' (hourly).")
    ] = None,
    interval: Annotated[
        float | None, typer.Option(min=1, help="Or: every this many seconds.")
    ] = None,
    name: Annotated[str, typer.Option(help="Deployment name.")] = "twinops-monitor",
    no_retrain: Annotated[bool, typer.Option(help="Report only; never start a retrain.")] = False,
    lookback_hours: Annotated[
        float | None, typer.Option(help="Monitor only predictions of the last N hours.")
    ] = None,
) -> None:
    """Serve the monitor flow on a schedule (Prefect `flow.serve`; Ctrl-C stops)."""
    if (cron is None) == (interval is None):
        _fail("give exactly one of --cron or --interval")
    _settings()
    from pipelines.monitor_flow import monitor_flow

    schedule = {"cron": cron} if cron is not None else {"interval": interval}
    monitor_flow.serve(name=name, **schedule, parameters={
        "retrain_on_drift": not no_retrain, "lookback_hours": lookback_hours})


@app.command()
def feedback(
    asset_id: Annotated[str | None, typer.Option(help="Asset the event happened to.")] = None,
    cycle: Annotated[int | None, typer.Option(help="Cycle of the event.")] = None,
    event: Annotated[str, typer.Option(help="failure or maintenance")] = "failure",
    timestamp: Annotated[
        str | None, typer.Option(help="UTC time of the event (ISO); default: when the "
                                 "asset's reading of that cycle was taken, else now.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="CSV/Parquet of events (asset_id,timestamp,cycle,event).")
    ] = None,
) -> None:
    """Record ground truth (failures, maintenance); bad events are rejected with a reason."""
    import pandas as pd

    settings = _settings()
    from features.events import reading_time, record_events

    if file is not None:
        if not file.exists():
            _fail(f"no such file: {file}")
        events = pd.read_parquet(file) if file.suffix == ".parquet" else pd.read_csv(file)
    elif asset_id is None or cycle is None:
        _fail("give --asset-id and --cycle (or --file)")
    else:
        from datetime import UTC, datetime

        # "now" for a cycle read long ago would contradict the readings after it (rejected)
        stamp = timestamp or pd.Timestamp(reading_time(settings, asset_id, cycle)
                                          or datetime.now(UTC)).isoformat()
        events = pd.DataFrame([{"asset_id": asset_id, "cycle": cycle, "event": event,
                                "timestamp": stamp}])
    result = record_events(settings, events)
    _print(result.summary())
    if result.rejected:
        raise typer.Exit(code=2)


@app.command()
def run(
    drift: Annotated[
        str | None, typer.Option(help="Inject drift into the live fleet: 'bias' or 'regime'.")
    ] = None,
    asset_type: AssetTypeOption = None,
) -> None:
    """The whole loop on the simulators: ingest → features → train → evaluate → promote →
    score → monitor (→ retrain), for each simulated type (default) or one."""
    from features.sources.loader import SIMULATED_TYPES
    from pipelines.fleet_report import write_fleet_report
    from pipelines.loop import run_flow
    from pipelines.summary import where_to_look

    for settings in _types_with(asset_type, lambda s: s.asset_type in SIMULATED_TYPES):
        summary = run_flow(settings, live_drift=drift)
        typer.echo(where_to_look(settings, summary))
        typer.echo(decisions_cli.decision_lines(settings))
    page, run_id = write_fleet_report(settings)
    typer.echo(f"\nfleet page          {page}  (MLflow run {run_id}; twinops report fleet)")


asset_types_app = typer.Typer(rich_markup_mode=None)
app.add_typer(asset_types_app, name="asset-types")


@asset_types_app.callback(invoke_without_command=True)
def asset_types(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Full declarations as JSON.")] = False,
) -> None:
    """The declared asset types with their settings, sensors and units."""
    from features.asset_types import AssetTypeError

    if ctx.invoked_subcommand is not None:
        return
    settings = _settings()
    try:
        types = settings.declared_types()
    except AssetTypeError as exc:
        _fail(str(exc))
    if as_json:
        _print({name: t.describe() for name, t in sorted(types.items())})
        return
    for name, t in sorted(types.items()):
        unit = f"RUL in {t.rul_unit}, window {t.window} readings"
        index = ("cycle" if t.time_index == "cycle"
                 else f"timestamp every {t.sampling_period_s:g} s")
        typer.echo(f"{name}: {t.description} ({index}; {unit}; model "
                   f"{settings.for_type(name).model_name})")
        for kind, channels in (("setting", t.settings), ("sensor", t.sensors)):
            for ch in channels:
                bounded = ch.min is not None and ch.max is not None
                rng = f"[{ch.min:g}, {ch.max:g}]" if bounded else ""
                optional = " optional" if ch.optional else ""
                typer.echo(f"  {kind:<8} {ch.name:<14} {ch.unit:<22} {rng}{optional}")
        typer.echo(f"  failure modes: {', '.join(t.failure_modes)}")


@asset_types_app.command("fit-regimes")
def fit_regimes(
    asset_type: AssetTypeOption = None,
    readings: Annotated[
        Path | None,
        typer.Option(help="CSV or Parquet readings of the training fleet; default: the "
                     "type's stored readings."),
    ] = None,
) -> None:
    """Fit the per-regime sensor statistics of a type that declares `regimes: {settings:
    ...}` and print its `regimes` block (YAML) to put in the declaration, then retrain."""
    from features import datastore
    from features.asset_types import AssetTypeError
    from features.regimes import fit_regimes as fit
    from features.regimes import regimes_yaml
    from features.sources.tabular import read_tabular
    from features.validation import validate_readings

    settings = _one_type(asset_type)
    try:
        # a file goes through the ingest checks first: a sentinel or a unit mix-up in the
        # statistics would shift every z-score of its regime
        frame = (datastore.load_readings(settings) if readings is None else
                 validate_readings(read_tabular(readings, settings.type), settings.type).valid)
    except (FileNotFoundError, ValueError) as exc:
        _fail(f"--readings {readings}: {exc}")
    if frame.empty:
        _fail(f"no valid {settings.asset_type} readings to fit regimes on: ingest the training "
              "fleet first, or pass --readings")
    try:
        typer.echo(regimes_yaml(fit(frame, settings.type)), nl=False)
    except AssetTypeError as exc:
        _fail(str(exc))


def _review_call(fn, *args, **kwargs):
    from pipelines.review import ReviewError

    try:
        return fn(*args, **kwargs)
    except (ReviewError, LookupError) as exc:
        _fail(str(exc))


@review_app.command("list")
def review_list(asset_type: AssetTypeOption = None) -> None:
    """Candidate versions with their review status (from the audit), aliases and the
    serving version an approval made of each."""
    from pipelines.review import versions

    rows = _review_call(versions, _one_type(asset_type))
    if not rows:
        typer.echo("no registered versions")
    for r in rows:
        aliases = ",".join(r["aliases"]) or "-"
        serving = f"serving v{r['serving_version']}" if r["serving_version"] else "-"
        typer.echo(f"v{r['version']:<4} {r['status']:<18} aliases={aliases:<20} "
                   f"{serving:<12} trained_by={r['trained_by']:<12} {r['created']}")


@review_app.command("show")
def review_show(version: Annotated[str, typer.Argument(help="Model version.")],
                asset_type: AssetTypeOption = None) -> None:
    """Build the review report (candidate vs champion, gates, lineage), log it to MLflow."""
    from pipelines.review import show

    _print(_review_call(show, _one_type(asset_type), version))


def _decide(version: str, comment: str, approve: bool, asset_type: str | None) -> None:
    """Apply a review decision with this user's credentials, then resume a waiting flow."""
    settings = _one_type(asset_type)
    from pipelines import review
    from pipelines.promotion_flow import ReviewDecision, resume_waiting_run

    if approve:
        result = _review_call(review.approve, settings, version, comment)
        reviewer = result["approved_by"]
    else:
        result = _review_call(review.reject, settings, version, comment)
        reviewer = result["rejected_by"]
    resumed = resume_waiting_run(settings, version, ReviewDecision(
        approve=approve, reviewer=reviewer, comment=comment, applied=True))
    _print({**result, "resumed_flow_run": resumed})


@review_app.command("approve")
def review_approve(
    version: Annotated[str, typer.Argument(help="Model version.")],
    comment: Annotated[str, typer.Option(help="Why (recorded).")] = "",
    asset_type: AssetTypeOption = None,
) -> None:
    """Approve a challenger (not your own): `champion` moves to it; serving hot-swaps."""
    _decide(version, comment, approve=True, asset_type=asset_type)


@review_app.command("reject")
def review_reject(
    version: Annotated[str, typer.Argument(help="Model version.")],
    comment: Annotated[str, typer.Option(help="Why (recorded).")] = "",
    asset_type: AssetTypeOption = None,
) -> None:
    """Reject a candidate: it loses `challenger`; the reasons stay on the version."""
    _decide(version, comment, approve=False, asset_type=asset_type)


@review_app.command("rollback")
def review_rollback(comment: Annotated[str, typer.Option(help="Why (recorded).")] = "",
                    asset_type: AssetTypeOption = None) -> None:
    """Move `champion` back to the approved version it replaced, in one step."""
    from pipelines.review import rollback

    _print(_review_call(rollback, _one_type(asset_type), comment))


@review_app.command("history")
def review_history(
    verify: Annotated[bool, typer.Option(
        "--verify", help="Check the hash chain and the local mirror; exit 1 if tampered.")] = False,
    asset_type: AssetTypeOption = None,
) -> None:
    """The audit trail (from MLflow): every proposal (with its gate results), approval,
    refusal, rejection and rollback."""
    from pipelines import audit

    settings = _one_type(asset_type)
    if verify:
        result = audit.verify(settings)
        for problem in result.problems:
            typer.echo(f"TAMPERED: {problem}")
        typer.echo(f"audit of {settings.model_name}: {len(result.entries)} entries, "
                   + ("chain and mirror verify" if result.ok
                      else f"{len(result.problems)} problem(s)"))
        raise typer.Exit(0 if result.ok else 1)
    for entry in audit.history(settings):
        reasons = "; ".join(str(r) for r in entry.get("reasons") or [])
        typer.echo(f"#{entry.get('seq', '?'):<4} {entry.get('at', '?')}  "
                   f"{entry.get('action', '?'):<9} v{entry.get('version') or '-':<4} "
                   f"{entry.get('outcome', '?'):<18} by {entry.get('actor', '?')}  {reasons}")


@app.command()
def govern(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
) -> None:
    """Run the governor: the process holding the service identity that applies review
    decisions sent with reviewers' own credentials (docs/review.md#identities)."""
    from pipelines.governor import serve

    serve(_settings(), host, port)


@review_app.command("request")
def review_request(version: Annotated[str, typer.Argument(help="Model version.")],
                   asset_type: AssetTypeOption = None) -> None:
    """Run the promotion flow: propose, then wait for a reviewer (needs PREFECT_API_URL)."""
    settings = _one_type(asset_type)
    from pipelines.promotion_flow import promotion_flow

    _print(_review_call(promotion_flow, version, settings))


def main() -> None:  # console script entry point
    app()


if __name__ == "__main__":
    main()
