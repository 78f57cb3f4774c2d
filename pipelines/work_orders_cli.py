"""`twinops work-orders`: the work-order proposals in the outbox, and their delivery.

    twinops work-orders list [--status S] [--json]   ─► serving.work_order_outbox.Outbox.rows
    twinops work-orders send [--retry-rejected]      ─► deliver every pending one now
    twinops work-orders propose [-t TYPE]            ─► the monitor's step, without the drift check
    twinops work-orders schema                       ─► the payload's JSON Schema

The monitor flow proposes and delivers on its own (pipelines.monitor_flow.work_orders_task);
these commands let a person see what was proposed, and push deliveries after an outage.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Work-order proposals to a CMMS (for a planner to approve): list, "
                  "send, propose, schema.", no_args_is_help=True, rich_markup_mode=None)


def _settings():
    from pipelines.cli import _settings as settings

    return settings()


@app.command("list")
def list_proposals(
    status: Annotated[str | None, typer.Option(
        "--status", help="pending | delivered | rejected; default: all.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The proposals in the outbox with their delivery state (oldest first)."""
    from serving.work_order_outbox import DELIVERED, PENDING, REJECTED, Outbox

    if status not in (None, PENDING, DELIVERED, REJECTED):
        from pipelines.cli import _fail

        _fail(f"--status: one of {PENDING}, {DELIVERED}, {REJECTED}")
    rows = Outbox.of(_settings()).rows(status)
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    for row in rows:
        due = row["payload"].get("due_date") or "-"
        state = row["delivery"] + (f" (attempts {row['attempts']}: {row['last_error']})"
                                   if row["last_error"] else "")
        typer.echo(f"{row['id']}  {row['asset_type']:<10} {row['asset_id']:<16} "
                   f"{row['action']:<16} due {due}  {state}")
    if not rows:
        typer.echo("no work-order proposals" + (f" {status}" if status else ""))


@app.command("send")
def send(retry_rejected: Annotated[bool, typer.Option(
        help="First put rejected proposals back to pending (the CMMS side was fixed).")]
         = False) -> None:
    """Deliver every pending proposal now, whatever its backoff. Exits 1 when a delivery
    failed (the proposal stays pending) or nothing could be posted."""
    from serving.work_order_outbox import Outbox, deliver

    settings = _settings()
    outbox = Outbox.of(settings)
    if retry_rejected:
        typer.echo(f"{outbox.retry_rejected()} rejected proposal(s) back to pending")
    if settings.work_orders.cmms_url is None:
        typer.echo(f"work_orders.cmms_url is not set: {outbox.counts()['pending']} pending "
                   "proposal(s) kept in the outbox, nothing posted")
        return
    done = deliver(outbox, settings.work_orders, force=True)
    typer.echo(json.dumps(done, indent=2))
    if done.get("error") or done["failed"]:
        raise typer.Exit(1)


@app.command("propose")
def propose(asset_type: Annotated[str | None, typer.Option("--asset-type", "-t")] = None
            ) -> None:
    """The monitor's work-order step now: at-risk assets → proposals → outbox → CMMS."""
    from serving.work_orders import propose_and_deliver

    settings = _settings()
    kinds = [asset_type] if asset_type else sorted(settings.declared_types())
    for kind in kinds:
        typer.echo(json.dumps(propose_and_deliver(settings.for_type(kind)), indent=2))


@app.command("schema")
def schema() -> None:
    """The JSON Schema of the payload (docs/work-order.schema.json)."""
    from serving.work_orders import schema_json

    typer.echo(schema_json(), nl=False)
