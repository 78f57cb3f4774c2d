"""`twinops check api | deps`: the served API against its document, the dependencies against
known vulnerabilities.

    twinops check api [--url URL] [--examples N] ─► schemathesis (every check, every
        operation, N examples each; serving/schemathesis.toml) against URL/docs.json
    twinops check deps [--requirements FILE] ─► pip-audit --format json ─► audit_verdict:
        fails on a vulnerability AND on any package it could not check

Why a verdict of our own over pip-audit's exit code: pip-audit skips a package whose
vulnerability service does not answer, prints "No known vulnerabilities found" and exits 0,
so an audit where no service is reachable passes having checked nothing. `make audit` runs
`check deps` over the locked requirements (docs/operations.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Checks: the API against its OpenAPI document, dependencies against "
                       "known vulnerabilities (docs/operations.md).",
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


def audit_verdict(report: dict) -> tuple[bool, list[str]]:
    """(passed, lines) of a pip-audit JSON report: passed only when every dependency was
    checked and none has a known vulnerability."""
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    vulnerable = [d for d in deps if d.get("vulns")]
    lines = [f"{d['name']} {d.get('version', '?')}: {v['id']} (fixed in "
             f"{', '.join(v.get('fix_versions') or ['no release yet'])})"
             for d in vulnerable for v in d["vulns"]]
    if skipped:
        reasons = sorted({d["skip_reason"] for d in skipped})
        lines.append(f"NOT CHECKED: {len(skipped)} of {len(deps)} packages "
                     f"({', '.join(d['name'] for d in skipped[:10])}"
                     f"{', ...' if len(skipped) > 10 else ''}): {'; '.join(reasons[:3])}")
    if not deps:
        lines.append("NOT CHECKED: the report lists no packages")
    passed = bool(deps) and not skipped and not vulnerable
    if passed:
        lines.append(f"{len(deps)} packages checked: no known vulnerabilities")
    return passed, lines


@app.command("deps")
def deps(
    requirements: Annotated[Path | None, typer.Option(
        "--requirements", "-r", help="Pinned requirements to audit (`make audit`: the "
        "export of uv.lock); default: the environment twinops runs in.")] = None,
    service: Annotated[str, typer.Option(help="Vulnerability service: osv or pypi.")] = "osv",
    osv_url: Annotated[str | None, typer.Option(help="An OSV API (a mirror) to query.")] = None,
    timeout: Annotated[int, typer.Option(help="Seconds per query.")] = 15,
) -> None:
    """pip-audit the dependencies; exits 1 on a known vulnerability or on any package that
    could not be checked (no reachable vulnerability service is a failure, not a pass)."""
    command = [sys.executable, "-m", "pip_audit", "--format", "json", "--progress-spinner",
               "off", "--vulnerability-service", service, "--timeout", str(timeout)]
    if osv_url:
        command += ["--osv-url", osv_url]
    if requirements is not None:  # pinned and complete: no resolution, no pip
        command += ["--requirement", str(requirements), "--no-deps", "--disable-pip"]
    else:
        command += ["--skip-editable"]  # twinops itself is no published package
    done = subprocess.run(command, capture_output=True, text=True)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        typer.echo(done.stderr[-3000:] or done.stdout[-3000:], err=True)
        typer.echo(f"pip-audit failed (exit {done.returncode}): nothing was checked", err=True)
        raise typer.Exit(1) from None
    passed, lines = audit_verdict(report)
    for line in lines:
        typer.echo(line, err=not passed)
    raise typer.Exit(0 if passed else 1)
