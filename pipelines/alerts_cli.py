"""`twinops alerts list | ack`: the alerts the monitor raised, and who has seen them.

    twinops alerts list [--all] [--json] [-t TYPE] ─► monitoring.alert_store.AlertStore.rows
    twinops alerts ack ID... --by NAME             ─► AlertStore.ack (all or none)

The monitor flow raises and notifies the alerts (docs/alerts.md); these commands read the
same store in the state dir, so they need no server.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

app = typer.Typer(help="Alerts of the monitor: risk, sensor health, drift (docs/alerts.md).",
                  no_args_is_help=True, rich_markup_mode=None)


def _settings():
    from pipelines.cli import _settings as settings

    return settings()


def _fail(message: str) -> None:
    from pipelines.cli import _fail as fail

    fail(message)


def _status(row: dict, targets: list[str]) -> str:
    """In words: acknowledged, notified, pending (with the last error) or not notified."""
    if row["acked_by"]:
        return f"acked by {row['acked_by']} at {row['acked_at']}"
    sent = row["deliveries"]
    missing = [t for t in targets if not (sent.get(t) or {}).get("delivered_at")]
    if not targets:
        return "stored (no alerts.notify block)"
    if not missing:
        return "notified"
    tries = sum((sent.get(t) or {}).get("attempts", 0) for t in missing)
    errors = [sent[t]["last_error"] for t in missing if (sent.get(t) or {}).get("last_error")]
    return (f"pending notification to {', '.join(missing)}"
            + (f" ({tries} tries; last: {errors[-1]})" if tries else ""))


@app.command("list")
def list_alerts(
    show_all: Annotated[bool, typer.Option("--all", help="Closed episodes too.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines, evidence included.")]
    = False,
    asset_type: Annotated[str | None, typer.Option("--asset-type", "-t")] = None,
) -> None:
    """Open alerts (newest first): id, severity, kind, asset, state, message."""
    from monitoring.alert_store import AlertStore, store_path

    settings = _settings()
    if asset_type is not None and asset_type not in settings.declared_types():
        _fail(f"--asset-type: {asset_type!r} is not declared "
              f"({', '.join(sorted(settings.declared_types()))})")
    rows = [r for r in AlertStore(store_path(settings)).rows()
            if (show_all or r["closed_at"] is None)
            and (asset_type is None or r["asset_type"] == asset_type)]
    targets = list(settings.alerts.notify)
    if as_json:
        for row in rows:
            typer.echo(json.dumps({**row, "status": _status(row, targets)}, default=str))
        return
    if not rows:
        typer.echo("no open alerts" if not show_all else "no alerts")
        return
    for row in rows:
        where = f"{row['asset_type']}/{row['asset_id'] or '*'}"
        closed = f"  closed {row['closed_at'][:19]}" if row["closed_at"] else ""
        typer.echo(f"{row['alert_id']}  {row['severity']:<8} {row['kind']:<19} {where:<24} "
                   f"raised {row['raised_at'][:19]}{closed}  [{_status(row, targets)}]")
        typer.echo(f"    {row['message']}")


@app.command("ack")
def ack(
    alert_ids: Annotated[list[str], typer.Argument(help="Alert ids (`twinops alerts list`).")],
    by: Annotated[str, typer.Option("--by", help="Who acknowledges (a name).")],
) -> None:
    """Acknowledge alerts: they are not notified any more; the episode stays open until its
    condition clears, so it is not raised again either. Unknown ids change nothing."""
    from monitoring.alert_store import AlertStore, store_path

    settings = _settings()
    try:
        done = AlertStore(store_path(settings)).ack(alert_ids, by, datetime.now(UTC))
    except KeyError as exc:
        _fail(str(exc.args[0]))
    except ValueError as exc:
        _fail(str(exc))
    for alert_id in done["acked"]:
        typer.echo(f"{alert_id} acknowledged by {by.strip()}")
    for alert_id in done["already"]:
        typer.echo(f"{alert_id} was already acknowledged")
