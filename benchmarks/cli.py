"""`twinops benchmark ...`: measured figures, printed as JSON and a readable table.

    twinops benchmark <name> ─► benchmarks/<name>.py:command ─► F.json + table on stdout

Speed and quality targets live here, not in timed tests. Each benchmark module
keeps its heavy imports inside `command`, so `twinops --help` stays instant.
Register a benchmark by importing its `command` below.
"""

from __future__ import annotations

import typer

benchmark_app = typer.Typer(help="Benchmarks: print figures as JSON + a table "
                            "(see docs/benchmarks.md).",
                            no_args_is_help=True, rich_markup_mode=None)

from benchmarks.drift import command as _drift  # noqa: E402  (light: heavy imports inside)

benchmark_app.command("drift")(_drift)

from benchmarks.rul import command as _rul  # noqa: E402  (light: heavy imports inside)

benchmark_app.command("rul")(_rul)

from benchmarks.serve import command as _serve  # noqa: E402  (light: heavy imports inside)

benchmark_app.command("serve")(_serve)

from benchmarks.maintenance import command as _maintenance  # noqa: E402  (light: heavy inside)

benchmark_app.command("maintenance")(_maintenance)

from benchmarks.fleet_risk import command as _fleet_risk  # noqa: E402  (light: heavy inside)

benchmark_app.command("fleet-risk")(_fleet_risk)

from benchmarks.whatif import command as _whatif  # noqa: E402  (light: heavy imports inside)

benchmark_app.command("whatif")(_whatif)

from benchmarks.soak import command as _soak  # noqa: E402  (light: heavy imports inside)

benchmark_app.command("soak")(_soak)
