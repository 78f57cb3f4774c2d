"""`twinops assets`, `fleet`, `recommend`, `report fleet`: decisions from the CLI.

    twinops assets import FILE  ─► features.maintenance.read_metadata_file ─► the registry
    twinops fleet               ─► serving.fleet.fleet_risk        (local champions, no server)
    twinops recommend ID...     ─► serving.fleet.recommend_assets  (same answers as the API)
    twinops report fleet        ─► pipelines.fleet_report (HTML page, logged to MLflow)

The commands answer from the champions and the online store directly, the same functions
as POST /fleet/risk and /recommend, so a planner needs no running server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

assets_app = typer.Typer(help="The asset registry: metadata for decisions (criticality, "
                         "costs, downtimes, parts lead time).", no_args_is_help=True,
                         rich_markup_mode=None)

report_app = typer.Typer(help="Pages people look at.", no_args_is_help=True,
                         rich_markup_mode=None)

HorizonOption = Annotated[
    float | None,
    typer.Option(min=0.0, help="In each type's RUL unit; default: the type's horizon."),
]


def _settings():
    from pipelines.cli import _settings as settings

    return settings()


def _fail(message: str) -> None:
    from pipelines.cli import _fail as fail

    fail(message)


def _lanes(settings) -> dict:
    from serving.fleet import local_lanes

    lanes = local_lanes(settings)
    if not lanes:
        _fail("no asset type has a champion yet: approve a model first (twinops review)")
    return lanes


def decision_lines(settings) -> str:
    """The top at-risk asset of settings' type and what is recommended for it (the end of
    `twinops run`): the loop ends in a decision, not only a number."""
    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of, profiles_of
    from serving.decision_schemas import FleetRiskRequest, RecommendRequest
    from serving.fleet import fleet_risk, local_lanes, recommend_assets

    kind = settings.asset_type
    lanes = local_lanes(settings, [kind])
    if not lanes:
        return "\n".join([f"decision            none: no {kind} champion serves (nothing is "
                          "recommended)", *whatif_lines(settings)])
    assets = load_assets(settings)
    top = fleet_risk(FleetRiskRequest(asset_type=kind, page_size=1), lanes=lanes,
                     assets=assets, criticality=criticality_of(settings, assets),
                     failed_at=last_failures(settings)).items
    if not top or top[0].risk is None:
        return f"decision            none: no {kind} asset has current features"
    item = top[0]
    rec = recommend_assets(RecommendRequest(asset_ids=[item.asset_id]), lanes=lanes,
                           type_of=lambda ids: {a: kind for a in ids},
                           profiles=profiles_of(settings, [item.asset_id])).recommendations[0]
    action = (f"{rec.action}" + (f" in {rec.due_in:.3g} {rec.rul_unit}" if rec.due_in else "")
              + f": {rec.reasons[0]}") if hasattr(rec, "action") else rec.error
    from pipelines.fleet_report import top_drivers

    drivers = top_drivers([item.asset_id], lanes, lambda ids: {a: kind for a in ids})
    return "\n".join([
        f"top at-risk asset   {item.asset_id}  risk {item.risk:.2f} (p_fail within "
        f"{item.horizon:g} {item.rul_unit}), RUL {item.rul:.1f} [{item.rul_lower:.1f}, "
        f"{item.rul_upper:.1f}]  (twinops fleet -t {kind})",
        f"top drivers         {drivers.get(item.asset_id, '-')} ({item.rul_unit} of RUL; "
        "POST /predict with explain: true)",
        f"recommendation      {action}",
        f"                    a proposal for a person: nothing is scheduled "
        f"(twinops recommend {item.asset_id})", *whatif_lines(settings)])


def whatif_lines(settings, raise_by: float = 0.10) -> list[str]:
    """For a type answered by physics (the pump): its oldest asset in service, what-if its
    supply voltage were `raise_by` higher (serving.whatif; the demo's what-if). The oldest,
    because without a champion nothing ranks the fleet, and the longest life so far is
    the one nearest its end that the physics can estimate."""
    from features.datastore import last_failures, load_readings
    from serving.whatif import MAX_READINGS, PHYSICS_TYPES, WhatIfError, answer_whatif
    from serving.whatif_schemas import WhatIfRequest

    kind = settings.asset_type
    if kind not in PHYSICS_TYPES:
        return []
    readings = load_readings(settings)
    failed = last_failures(settings)
    last = readings.groupby(readings["asset_id"].astype(str))["timestamp"].max()
    counts = readings["asset_id"].astype(str).value_counts()
    alive = [a for a in counts.index if counts[a] <= MAX_READINGS
             and not (a in failed and last[a].timestamp() <= failed[a])]
    if not alive:
        return []
    asset = max(alive, key=lambda a: counts[a])
    mine = readings[readings["asset_id"].astype(str) == asset].sort_values("cycle")
    volts = float(mine["V"].tail(12).median()) * (1 + raise_by)
    try:
        answer = answer_whatif(WhatIfRequest(asset_id=asset, profile={"V": round(volts, 1)}),
                               settings=settings, type_of=lambda ids: {a: kind for a in ids},
                               lanes={})
    except WhatIfError as exc:
        return [f"what-if             {asset}: {exc.message}"]
    unit = settings.type.rul_unit

    def rul(scenario: dict) -> str:
        value = scenario["rul"]
        return f"{value:.1f} {unit}" if value is not None else "beyond the simulated time"

    now, then = answer["current"], answer["requested"]
    return [f"what-if             {asset} (oldest in service) at V {raise_by:+.0%} "
            f"({volts:.0f} V): median RUL {rul(then)} vs {rul(now)} at its current profile "
            f"(ProgPy physics, a best guess: docs/whatif.md; twinops whatif {asset} "
            f"--set V={volts:.0f})"]


@assets_app.command("import")
def assets_import(file: Annotated[Path, typer.Argument(help="CSV, Parquet or JSON: asset_id, "
                                                       "and any of asset_type, site, "
                                                       "criticality, failure_cost, ...")]
                  ) -> None:
    """Set assets' maintenance figures (docs/decisions.md); all rows or none."""
    from features.datastore import import_asset_metadata
    from features.maintenance import MetadataError, read_metadata_file

    settings = _settings()
    try:
        counts = import_asset_metadata(settings, read_metadata_file(file))
    except MetadataError as exc:
        _fail(str(exc))
    typer.echo(f"imported {file}: {counts['updated']} asset(s) updated, "
               f"{counts['registered']} registered")


@assets_app.command("list")
def assets_list(asset_type: Annotated[str | None, typer.Option("--asset-type", "-t")] = None
                ) -> None:
    """The registry with each asset's effective maintenance profile (its own values over
    its type's defaults), as JSON lines."""
    from features.datastore import load_assets
    from features.maintenance import profiles_of

    settings = _settings()
    assets = load_assets(settings)
    if asset_type:
        assets = assets[assets["asset_type"].astype(str) == asset_type]
    profiles = profiles_of(settings, assets["asset_id"].astype(str))
    for row in assets.to_dict("records"):
        profile = profiles.get(str(row["asset_id"]))
        typer.echo(json.dumps({"asset_id": row["asset_id"], "asset_type": row["asset_type"],
                               "site": None if row["site"] is None or str(row["site"]) == "<NA>"
                               else row["site"],
                               **(profile.model_dump() if profile else {})}, default=str))


def fleet(
    asset_type: Annotated[str | None, typer.Option("--asset-type", "-t")] = None,
    horizon: HorizonOption = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Fleet risk: assets ranked by probability of failure within the horizon x
    criticality, with the RUL interval and the age of the last reading."""
    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of
    from serving.decision_schemas import FleetRiskRequest
    from serving.fleet import fleet_risk

    settings = _settings()
    lanes = _lanes(settings)
    if asset_type and asset_type not in lanes:
        _fail(f"--asset-type: no champion of {asset_type!r} (served: {', '.join(lanes)})")
    assets = load_assets(settings)
    answer = fleet_risk(FleetRiskRequest(asset_type=asset_type, horizon=horizon, page=page,
                                         page_size=page_size),
                        lanes=lanes, assets=assets, criticality=criticality_of(settings, assets),
                        failed_at=last_failures(settings))
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    typer.echo(f"{answer.total} assets in service ({answer.out_of_service} failed and out of "
               f"service left out), page {answer.page} "
               f"(rank, asset, type, risk = p_fail x criticality, RUL [interval], last reading)")
    for item in answer.items:
        if item.risk is None:
            typer.echo(f"{item.rank:>5}  {item.asset_id:<16} {item.asset_type:<10} "
                       f"{item.data_quality}")
            continue
        typer.echo(f"{item.rank:>5}  {item.asset_id:<16} {item.asset_type:<10} "
                   f"risk {item.risk:6.3f} (p_fail {item.p_fail:.2f} in {item.horizon:g} "
                   f"{item.rul_unit}, x{item.criticality:g})  RUL {item.rul:7.1f} "
                   f"[{item.rul_lower:.1f}, {item.rul_upper:.1f}]  "
                   f"{item.last_reading_age_s / 3600:.1f} h ago"
                   + ("" if item.data_quality == "ok" else f"  {item.data_quality}"))


def recommend(
    asset_ids: Annotated[list[str], typer.Argument(help="Assets to recommend for.")],
    horizon: HorizonOption = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Maintenance recommendations: the action, when, its expected cost against
    run-to-failure, and why. A proposal for a person: nothing is scheduled."""
    from features.datastore import asset_types_of
    from features.maintenance import profiles_of
    from serving.decision_schemas import RecommendRequest
    from serving.fleet import recommend_assets

    settings = _settings()
    lanes = _lanes(settings)
    answer = recommend_assets(RecommendRequest(asset_ids=asset_ids, horizon=horizon),
                              lanes=lanes, type_of=lambda ids: asset_types_of(settings, ids),
                              profiles=profiles_of(settings, asset_ids))
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    for r in answer.recommendations:
        if not hasattr(r, "action"):
            typer.echo(f"{r.asset_id}: {r.error}")
            continue
        when = f" in {r.due_in:.3g} {r.rul_unit}" if r.due_in is not None else ""
        typer.echo(f"{r.asset_id} ({r.asset_type}): {r.action}{when}"
                   + (f" (by {r.due_date})" if r.due_date and r.action != "run" else ""))
        for reason in r.reasons:
            typer.echo(f"  - {reason}")


@report_app.command("fleet")
def report_fleet(top: Annotated[int, typer.Option(min=1, max=1000, help="Assets per type.")]
                 = 20) -> None:
    """The fleet page (HTML): per type the highest risks with their recommended action and
    why, and the planned maintenance on a timeline; logged to MLflow."""
    from pipelines.fleet_report import write_fleet_report

    settings = _settings()
    _lanes(settings)  # a clear error when nothing is served yet
    path, run_id = write_fleet_report(settings, top)
    typer.echo(f"fleet page: {path}\nMLflow run: {run_id} (folder fleet)")
