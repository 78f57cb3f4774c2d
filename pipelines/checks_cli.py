"""`twinops check api`: the served API against its document.

    twinops check api [--url URL] [--examples N] ─► schemathesis (every check, every
        operation, N examples each; serving/schemathesis.toml) against URL/docs.json
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Checks: the API against its OpenAPI document (docs/operations.md).",
                  no_args_is_help=True, rich_markup_mode=None)

#: The fuzzing settings shared with tests/integration/test_api_contract.py.
SCHEMATHESIS_CONFIG = Path(__file__).resolve().parents[1] / "serving" / "schemathesis.toml"


@app.command("api")
def api(
    url: Annotated[str, typer.Option(help="Base URL of a running server.")] = (
        "http://127.0.0.1:3000"),
    examples: Annotated[int, typer.Option("--examples", "-n", min=1,
                                          help="Generated requests per operation.")] = 200,
    api_key: Annotated[str | None, typer.Option(
        envvar="TWINOPS_API_KEY", help="API key for the guarded routes (env TWINOPS_API_KEY).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Concurrent schemathesis workers.")] = 1,
) -> None:
    """Fuzz every operation of a running server with schemathesis, every check on; exits
    non-zero on any failure (its report says how to reproduce each)."""
    url = url.rstrip("/")
    command = [str(Path(sys.executable).parent / "st"), "--config-file",
               str(SCHEMATHESIS_CONFIG), "run", f"{url}/docs.json", "--url", url,
               "--checks", "all", "--max-examples", str(examples), "--workers", str(workers),
               "--wait-for-schema", "60"]
    env = {**os.environ, "TWINOPS_API_KEY": api_key or ""}
    raise typer.Exit(subprocess.run(command, env=env).returncode)
