"""`twinops whatif ASSET --set V=520 [--set pdisch=...]`: RUL under a future profile.

    twinops whatif ID --set F=V ... ─► serving.whatif.answer_whatif (the same answer as
                                       POST /whatif, without a server; docs/whatif.md)

The pump is answered by its physics (no champion needed); another type by its champion,
loaded locally (serving.fleet.local_lanes), as an extrapolation.
"""

from __future__ import annotations

from typing import Annotated

import typer


def _parse_sets(pairs: list[str]) -> dict[str, float]:
    """["V=520", "pdisch=9.5e5"] -> {"V": 520.0, "pdisch": 950000.0}; a bad one names itself."""
    profile = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            profile[name.strip()] = float(value)
        except ValueError:
            raise typer.BadParameter(f"{pair!r}: expected FIELD=NUMBER, e.g. V=520",
                                     param_hint="--set") from None
    return profile


def whatif(
    asset_id: Annotated[str, typer.Argument(help="The asset.")],
    sets: Annotated[list[str], typer.Option("--set", help="FIELD=VALUE of the future "
                    "profile, in the type's setting names and units (repeat).")],
    horizon: Annotated[float | None, typer.Option(min=0.0, help="p_fail horizon, RUL unit; "
                       "default: the type's.")] = None,
    n_samples: Annotated[int | None, typer.Option(help="Physics: samples per profile.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What if the asset ran under another profile: RUL now vs under the requested one."""
    from pydantic import ValidationError

    from features.datastore import asset_types_of
    from pipelines.cli import _fail, _settings
    from serving.whatif import PHYSICS_TYPES, WhatIfError, answer_whatif
    from serving.whatif_schemas import WhatIfRequest, WhatIfResponse

    settings = _settings()
    try:
        request = WhatIfRequest(asset_id=asset_id, profile=_parse_sets(sets), horizon=horizon,
                                n_samples=n_samples)
    except ValidationError as exc:
        _fail(f"bad what-if request: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    kinds = asset_types_of(settings, [asset_id])
    lanes = {}
    if kinds.get(asset_id) not in (None, *PHYSICS_TYPES):
        from serving.fleet import local_lanes

        lanes = local_lanes(settings, [kinds[asset_id]])
    try:
        answer = WhatIfResponse(**answer_whatif(
            request, settings=settings, type_of=lambda ids: asset_types_of(settings, ids),
            lanes=lanes))
    except WhatIfError as exc:
        _fail(exc.message)
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
        return
    typer.echo(f"{answer.asset_id} ({answer.asset_type}), {answer.method}:")
    for name in ("current", "requested"):
        s = getattr(answer, name)

        def fmt(v):
            return "beyond the simulated time" if v is None else f"{v:.3g}"

        modes = ", ".join(f"{m} {share:.0%}" for m, share in s.failure_modes.items())
        typer.echo(f"  {name:<9} RUL {fmt(s.rul)} {answer.rul_unit} "
                   f"[{fmt(s.rul_lower)}, {fmt(s.rul_upper)}] ({answer.interval_level:.0%}), "
                   f"p_fail({answer.horizon:g}) {s.p_fail:.2f}" + (f"; {modes}" if modes else ""))
        typer.echo("            " + ", ".join(f"{k}={v:.6g}" for k, v in s.profile.items()))
    for note in answer.warnings:
        typer.echo(f"  ! {note}")
