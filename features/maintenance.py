"""Asset metadata for decisions: criticality, costs, downtimes and parts lead time.

    asset type declaration `maintenance:` (the type's defaults) ─┐
    twinops assets import FILE ─► validate every row ─► registry ┴─► profile_of(asset)
                                  (all or nothing)   (data/raw/assets.parquet)

Fleet risk weighs an asset's probability of failure by its criticality; a maintenance
recommendation trades the cost of a planned maintenance against an unplanned failure and
cannot plan before the parts arrive (serving.decisions). Those figures belong to the plant,
not the model: a type declares its defaults and each asset may override any of them.

Why an import is all or nothing (unlike readings, whose bad rows are quarantined and the
rest kept): a recommendation is priced with these figures, and a file half-applied leaves
some assets priced by the new list and others by the old one without anyone seeing it. A
bad file is refused with every bad field named, and nothing changes.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Columns of the asset registry that hold a MaintenanceProfile field (an asset's own
#: value; missing = the type's default).
PROFILE_FIELDS = ("criticality", "failure_cost", "planned_cost", "failure_downtime_h",
                  "planned_downtime_h", "downtime_cost_per_h", "parts_lead_time",
                  "fixed_interval")


class MetadataError(ValueError):
    """An asset metadata file or row is invalid; the message names the row and the field."""


class MaintenanceProfile(BaseModel):
    """What a maintenance decision about one asset costs (any currency, one per fleet)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Weight of the asset's failure probability in the fleet risk ranking (1 = ordinary).
    criticality: float = Field(default=1.0, gt=0)
    #: Cost of an unplanned failure: repair, collateral damage, penalties.
    failure_cost: float | None = Field(default=None, ge=0)
    #: Cost of a planned maintenance (the renewal a recommendation schedules).
    planned_cost: float | None = Field(default=None, ge=0)
    #: Hours the asset stands still after a failure / for a planned maintenance.
    failure_downtime_h: float = Field(default=0.0, ge=0)
    planned_downtime_h: float = Field(default=0.0, ge=0)
    #: What an hour of standstill costs (lost production).
    downtime_cost_per_h: float = Field(default=0.0, ge=0)
    #: Time from ordering the parts to having them, in the type's RUL unit (cycles or
    #: hours): a planned maintenance cannot happen sooner.
    parts_lead_time: float = Field(default=0.0, ge=0)
    #: The plant's current fixed maintenance interval (age in the RUL unit), if it has one:
    #: recommendations are compared with it.
    fixed_interval: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _finite(self) -> MaintenanceProfile:
        for name in PROFILE_FIELDS:
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{name}: must be a finite number, got {value}")
        return self

    @property
    def priced(self) -> bool:
        """Both costs known: a recommendation can be computed."""
        return self.failure_cost is not None and self.planned_cost is not None

    @property
    def failure_total(self) -> float:
        """An unplanned failure's whole cost: repair plus its standstill."""
        return float(self.failure_cost) + self.failure_downtime_h * self.downtime_cost_per_h

    @property
    def planned_total(self) -> float:
        """A planned maintenance's whole cost: the work plus its standstill."""
        return float(self.planned_cost) + self.planned_downtime_h * self.downtime_cost_per_h

    def overlaid(self, values: dict) -> MaintenanceProfile:
        """This profile with an asset's own values (None / NaN = keep the default)."""
        mine = {k: float(v) for k, v in values.items()
                if k in PROFILE_FIELDS and v is not None and not _is_nan(v)}
        return MaintenanceProfile(**{**self.model_dump(), **mine})


def _is_nan(value) -> bool:
    try:
        return math.isnan(float(value))
    except (TypeError, ValueError):
        return False


def _message(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'row'}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors())


class MetadataRow(MaintenanceProfile):
    """One row of an asset metadata file: an asset id and any profile fields it sets.

    Fields left empty keep the asset's type default; `asset_type`, when given, must be the
    type the asset is (or will be) registered as.
    """

    asset_id: str = Field(min_length=1, max_length=256)
    asset_type: str | None = None
    site: str | None = None
    criticality: float | None = Field(default=None, gt=0)


def read_metadata_file(path: str | Path):
    """The validated rows of a CSV / parquet / JSON metadata file, as a DataFrame with the
    registry's columns (asset_id, asset_type, site and PROFILE_FIELDS). Raises MetadataError
    naming every bad row and field; nothing is half-read."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise MetadataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix in (".json", ".jsonl"):
            frame = pd.read_json(path, lines=suffix == ".jsonl", dtype=False)
        else:
            frame = pd.read_csv(path, dtype={"asset_id": str, "asset_type": str, "site": str})
    except (ValueError, OSError) as exc:  # pandas' parse errors are ValueErrors
        raise MetadataError(f"{path}: cannot read as a table: {exc}") from exc
    if "asset_id" not in frame.columns:
        raise MetadataError(f"{path}: no asset_id column (columns: {', '.join(frame.columns)})")
    known = {"asset_id", "asset_type", "site", *PROFILE_FIELDS}
    unknown = [c for c in frame.columns if c not in known]
    if unknown:
        raise MetadataError(f"{path}: unknown column(s) {', '.join(map(str, unknown))} "
                            f"(known: {', '.join(sorted(known))})")
    rows, errors = [], []
    for i, raw in enumerate(frame.to_dict("records"), start=1):
        values = {k: v for k, v in raw.items() if not (v is None or _is_nan(v))}
        try:
            rows.append(MetadataRow(**values).model_dump())
        except ValidationError as exc:
            errors.append(f"row {i} (asset_id {raw.get('asset_id')!r}): {_message(exc)}")
    ids = [r["asset_id"] for r in rows]
    errors += [f"asset_id {a!r} appears more than once" for a in sorted(set(ids))
               if ids.count(a) > 1]
    if errors:
        raise MetadataError(f"{path}: {len(errors)} problem(s), nothing imported:\n  "
                            + "\n  ".join(errors))
    return pd.DataFrame(rows, columns=["asset_id", "asset_type", "site", *PROFILE_FIELDS])


def profiles_of(settings, asset_ids) -> dict[str, MaintenanceProfile]:
    """{asset_id: its profile}: its type's defaults overlaid with its own registry values,
    for the registered ids among `asset_ids`."""
    from features.datastore import load_assets

    assets = load_assets(settings)
    assets = assets[assets["asset_id"].astype(str).isin({str(a) for a in asset_ids})]
    types = {name: settings.for_type(name).type.maintenance
             for name in set(assets["asset_type"].astype(str))
             if name in settings.declared_types()}
    return {str(row["asset_id"]): types[str(row["asset_type"])].overlaid(row)
            for row in assets.to_dict("records") if str(row["asset_type"]) in types}


def criticality_of(settings, assets) -> dict[str, float]:
    """{asset_id: criticality} of every row of the registry frame `assets`: the asset's own
    value, else its type's default (vectorised: a fleet risk ranking reads 10,000 of them)."""
    import pandas as pd

    defaults = {name: settings.for_type(name).type.maintenance.criticality
                for name in settings.declared_types()}
    own = pd.to_numeric(assets["criticality"], errors="coerce")
    default = assets["asset_type"].astype(str).map(defaults).fillna(1.0)
    return dict(zip(assets["asset_id"].astype(str), own.fillna(default).astype(float),
                    strict=True))
