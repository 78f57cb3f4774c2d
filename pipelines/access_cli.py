"""`twinops access setup | show`: the review workflow's identities and grants on the MLflow
tracking server (pipelines/access.py, docs/operations.md#mlflow-tracking-server).

    twinops access setup --service S --trainer T.. --reviewer R.. [--viewer V..]
        (as the admin: MLFLOW_TRACKING_USERNAME/PASSWORD) ─► access.setup ─► what changed
    twinops access show ─► every user's permission on the four resources, the reviewers

Passwords of users to create come from TWINOPS_ACCESS_PASSWORD_<NAME> (never the command
line: it ends up in shell history and `ps`).
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

app = typer.Typer(help="Identities and grants on the MLflow tracking server (review "
                       "workflow; docs/operations.md).", no_args_is_help=True,
                  rich_markup_mode=None)


@app.command("setup")
def setup(
    service: Annotated[str, typer.Option(help="The platform's service identity.")],
    trainer: Annotated[list[str] | None, typer.Option(help="A trainer (repeat).")] = None,
    reviewer: Annotated[list[str] | None, typer.Option(help="A reviewer (repeat).")] = None,
    viewer: Annotated[list[str] | None, typer.Option(help="A user with no rights (repeat).")
                      ] = None,
) -> None:
    """Create missing users and resources, grant exactly the role matrix, write the reviewer
    list; run with the admin's credentials. Passwords of new users (and of the service, when
    its resources are missing): TWINOPS_ACCESS_PASSWORD_<NAME>."""
    from pipelines import access
    from pipelines.cli import _fail, _settings

    trainers, reviewers, viewers = trainer or [], reviewer or [], viewer or []
    names = {service, *trainers, *reviewers, *viewers}
    try:
        changes = access.setup(_settings(), service=service, trainers=trainers,
                               reviewers=reviewers, viewers=viewers,
                               passwords=access.passwords_from_env(names))
    except access.AccessError as exc:
        _fail(str(exc))
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if not isinstance(exc, MlflowException):
            raise
        # a 401/403 here means the caller is not the admin
        _fail(f"{exc.message} (run `twinops access setup` with the admin's "
              "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD)")
    if not changes:
        typer.echo("access: nothing to change (users, resources and grants already match)")
    for change in changes:
        typer.echo(f"access: {change}")


@app.command("show")
def show(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Who holds what: every user's permission on the training experiment, the candidates
    and serving models and the reviews experiment, and the reviewer list."""
    from pipelines import access
    from pipelines.cli import _fail, _settings

    try:
        table = access.show(_settings())
    except access.AccessError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    labels = list(access.MATRIX)
    width = max([len("user"), *map(len, table["users"])])
    typer.echo("  ".join(["user".ljust(width), *labels]))
    for name, row in table["users"].items():
        cells = [row[label].ljust(len(label)) for label in labels]
        typer.echo("  ".join([name.ljust(width), *cells]) + ("  (admin)" if row["admin"] else ""))
    typer.echo(f"{access.REVIEWERS_TAG}: {', '.join(table['reviewers']) or '(none)'}")
