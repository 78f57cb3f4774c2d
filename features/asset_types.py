"""Asset types: a fleet's data contract, declared in YAML, not in code.

    features/declarations/*.yaml (built in: turbofan, pump) ─┐
    settings.asset_types_dir/*.yaml (one file per type)      ├─► load_asset_types
    twinops.yaml `asset_types: {name: {...}}`                ┘    {name: AssetType}
                                                                       │
                                                                       ▼
        validation (columns, ranges, optional sensors) · window transform (feature list) ·
        Feast objects per type · MLflow model `<prefix>-<type>` · drift reference · serving

An asset type says what one kind of monitored asset reports and how its life is counted:
its operating settings and sensors (each with a unit, a valid range and whether it may be
missing), its time index (`cycle`, or `timestamp` with a nominal sampling period), its
failure modes, the unit of its RUL, its feature window, its damage-law family, its serving
horizon and how old its features may get before serving calls them stale.

Every reading keeps the three key columns of features.contract (asset_id, timestamp,
cycle). For a `timestamp` type, `cycle` is the reading's age in sampling periods since the
start of the asset's life (features.validation derives it), so the window transform, labels
and training read one age axis for every type; its RUL is `cycles x period` in hours.

Units are checked with pint, the units library: a declaration that says `unit: degF` or
`m^3/s` is fine, `unit: bananas` is an error naming the field.

A fleet flown in several operating conditions (C-MAPSS FD002/FD004) declares `regimes`: the
settings that identify a condition and, fitted on the training fleet, each condition's
sensor means and deviations; the window transform z-scores the sensors by them
(features.regimes).
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from features.contract import ASSET_ID, CYCLE, EVENT, TIMESTAMP
from features.maintenance import MaintenanceProfile

#: Built-in declarations, shipped with the package (YAML like any user's).
BUILTIN_DIR = Path(__file__).parent / "declarations"
#: Column names a channel may not take: the contract's keys and the columns the platform adds.
RESERVED = {ASSET_ID, TIMESTAMP, CYCLE, EVENT, "asset_type", "rul", "quarantine_reason"}
_NAME = r"^[A-Za-z][A-Za-z0-9_]*$"


class AssetTypeError(ValueError):
    """A declaration is invalid; the message names the file, the type and the field."""


@functools.cache
def _units():
    import pint  # ~0.5 s to build the registry: only when a declaration is read

    return pint.UnitRegistry()


class Channel(BaseModel):
    """One operating setting or sensor of an asset type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=_NAME)
    #: Any unit pint parses ("K", "degR", "psi", "rpm", "m^3/s", "dimensionless").
    unit: str
    #: Valid range (inclusive); a reading outside it is quarantined with the reason.
    min: float | None = None
    max: float | None = None
    #: An optional sensor may be missing (NaN) without quarantining the row; its features
    #: follow the type's `missing` policy. Settings are never optional.
    optional: bool = False
    description: str = ""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED:
            raise ValueError(f"{name!r} is a reserved column name ({', '.join(sorted(RESERVED))})")
        return name

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, unit: str) -> str:
        import pint

        try:
            _units().parse_units(unit)
        except (
            pint.errors.UndefinedUnitError,
            pint.errors.DefinitionSyntaxError,
            AttributeError,
            TypeError,
            ValueError,
        ) as exc:
            raise ValueError(f"unknown unit {unit!r} ({exc})") from None
        return unit

    @model_validator(mode="after")
    def _ordered_range(self) -> Channel:
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class MissingPolicy(BaseModel):
    """What the features of a missing optional sensor become.

    `carry_forward`: the sensor's last value is carried for up to `limit` readings (a
    dropout of a few samples is the common case and should not move the features), then
    NaN. `drop`: NaN at once. NaN features reach the model, which imputes them with the
    training mean (training.artifact) and so predicts from the sensors it has.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: Literal["carry_forward", "drop"] = "carry_forward"
    limit: int = Field(default=5, ge=0)


def _on_grid(value: float, step: float) -> bool:
    return abs(value / step - round(value / step)) < 1e-6


class RegimeLevel(BaseModel):
    """One operating regime: its key (the settings snapped to the steps, in the order of
    `Regimes.settings`) and every sensor's mean and standard deviation in it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: tuple[float, ...] = Field(min_length=1)
    mean: dict[str, float]
    #: 0 is allowed (a sensor constant in this regime) and divides as 1.
    std: dict[str, float]

    @model_validator(mode="after")
    def _finite(self) -> RegimeLevel:
        for what, values in (("mean", self.mean), ("std", self.std)):
            bad = sorted(n for n, v in values.items() if not math.isfinite(v))
            if bad:
                raise ValueError(f"{what} of {', '.join(bad)} is not a finite number")
        negative = sorted(n for n, v in self.std.items() if v < 0)
        if negative:
            raise ValueError(f"std of {', '.join(negative)} is negative")
        return self

    def __hash__(self) -> int:  # frozen, but holds dicts: hash their items
        return hash((self.key, tuple(self.mean.items()), tuple(self.std.items())))


class Regimes(BaseModel):
    """Operating regimes of a multi-condition fleet (features.regimes).

    `settings`: {setting: step}; a reading's regime key is each named setting rounded to
    its step, in this order. `levels`: the fitted statistics per regime, written by
    features.regimes.fit_regimes; empty until fitted (the transform refuses to run then).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    settings: dict[str, float] = Field(min_length=1)
    levels: tuple[RegimeLevel, ...] = ()

    @field_validator("settings")
    @classmethod
    def _positive_steps(cls, settings: dict[str, float]) -> dict[str, float]:
        bad = sorted(n for n, step in settings.items() if not (math.isfinite(step) and step > 0))
        if bad:
            raise ValueError(f"the step of {', '.join(bad)} must be a number > 0")
        return settings

    @model_validator(mode="after")
    def _keys(self) -> Regimes:
        steps = list(self.settings.values())
        seen: dict[tuple[int, ...], int] = {}
        for i, level in enumerate(self.levels):
            if len(level.key) != len(steps):
                raise ValueError(
                    f"levels.{i}.key {list(level.key)} has {len(level.key)} values for "
                    f"{len(steps)} settings ({', '.join(self.settings)})"
                )
            off = [
                n
                for n, v, s in zip(self.settings, level.key, steps, strict=True)
                if not _on_grid(v, s)
            ]
            if off:
                raise ValueError(
                    f"levels.{i}.key {list(level.key)} is not on the step grid of {', '.join(off)}"
                )
            grid = tuple(round(v / s) for v, s in zip(level.key, steps, strict=True))
            if grid in seen:
                raise ValueError(
                    f"levels.{i}.key {list(level.key)} repeats levels.{seen[grid]}.key"
                )
            seen[grid] = i
        return self

    def __hash__(self) -> int:
        return hash((tuple(self.settings.items()), self.levels))


class AssetType(BaseModel):
    """The declaration of one asset type (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Lower case: it names Feast objects and the registered model (`twinops-rul-<name>`).
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    time_index: Literal["cycle", "timestamp"] = "cycle"
    #: Nominal seconds between readings: required for a `timestamp` type (it turns time
    #: into the age axis); for a `cycle` type the usual time per cycle, used for staleness.
    sampling_period_s: float | None = Field(default=None, gt=0)
    rul_unit: Literal["cycles", "hours"] = "cycles"
    #: Piecewise-linear target cap of the RUL model, in rul_unit (125 cycles for C-MAPSS).
    rul_cap: float = Field(default=125.0, gt=0)
    settings: tuple[Channel, ...] = ()
    sensors: tuple[Channel, ...] = Field(min_length=1)
    failure_modes: tuple[str, ...] = ("failure",)
    #: Readings in the feature window (the short and long scales follow from it).
    window: int = Field(default=30, ge=1)
    #: Damage-law family of the physics-informed loss (training.physics).
    damage_law: Literal["exponential"] = "exponential"
    #: Default horizon of the probability of failure, in rul_unit.
    horizon: float = Field(default=30.0, gt=0)
    #: Features older than this many sampling periods are served with stale=true;
    #: None = never (needs sampling_period_s).
    stale_after_periods: float | None = Field(default=None, gt=0)
    missing: MissingPolicy = MissingPolicy()
    #: Operating regimes whose statistics normalise the sensors (features.regimes); None for
    #: a fleet flown in one condition.
    regimes: Regimes | None = None
    #: Defaults of every asset of the type for maintenance decisions (criticality, costs,
    #: downtimes, parts lead time); an asset overrides them by `twinops assets import`.
    maintenance: MaintenanceProfile = MaintenanceProfile()

    @field_validator("regimes")
    @classmethod
    def _regimes_fit_the_channels(
        cls, regimes: Regimes | None, info: ValidationInfo
    ) -> Regimes | None:
        if regimes is None:
            return regimes
        if "settings" in info.data:  # else settings failed and said so
            declared = [c.name for c in info.data["settings"]]
            unknown = [n for n in regimes.settings if n not in declared]
            if unknown:
                verb = "is not a declared setting" if len(unknown) == 1 else "are not declared"
                raise ValueError(
                    f"settings: {', '.join(unknown)} {verb} "
                    f"(the type's settings: {', '.join(declared) or 'none'})"
                )
        if "sensors" in info.data:
            sensors = [c.name for c in info.data["sensors"]]
            for i, level in enumerate(regimes.levels):
                for what, values in (("mean", level.mean), ("std", level.std)):
                    lacking = [n for n in sensors if n not in values]
                    extra = [n for n in values if n not in sensors]
                    if lacking:
                        raise ValueError(
                            f"levels.{i} (key {list(level.key)}): {what} lacks {', '.join(lacking)}"
                        )
                    if extra:
                        raise ValueError(
                            f"levels.{i} (key {list(level.key)}): {what} names "
                            f"{', '.join(extra)}, not a declared sensor"
                        )
        return regimes

    @model_validator(mode="after")
    def _consistent(self) -> AssetType:
        names = [c.name for c in (*self.settings, *self.sensors)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate channel name(s): {', '.join(dupes)}")
        if self.time_index == "timestamp" and self.sampling_period_s is None:
            raise ValueError("sampling_period_s is required when time_index is 'timestamp'")
        if self.rul_unit == "hours" and self.sampling_period_s is None:
            raise ValueError("sampling_period_s is required when rul_unit is 'hours'")
        if self.stale_after_periods is not None and self.sampling_period_s is None:
            raise ValueError("stale_after_periods needs sampling_period_s")
        if any(c.optional for c in self.settings):
            raise ValueError("settings cannot be optional (they condition every feature)")
        if not self.failure_modes:
            raise ValueError("failure_modes must name at least one mode")
        return self

    # ---- the columns everything else derives --------------------------------------------
    @property
    def setting_columns(self) -> list[str]:
        return [c.name for c in self.settings]

    @property
    def sensor_columns(self) -> list[str]:
        return [c.name for c in self.sensors]

    @property
    def optional_sensors(self) -> list[str]:
        return [c.name for c in self.sensors if c.optional]

    @property
    def measurement_columns(self) -> list[str]:
        return self.setting_columns + self.sensor_columns

    @property
    def reading_columns(self) -> list[str]:
        return [ASSET_ID, TIMESTAMP, CYCLE, *self.measurement_columns]

    @property
    def reading_dtypes(self) -> dict[str, str]:
        """Pandas dtypes of this type's readings table (timestamp tz-aware UTC)."""
        return {
            ASSET_ID: "string",
            TIMESTAMP: "datetime64[ns, UTC]",
            CYCLE: "int64",
            **{c: "float64" for c in self.measurement_columns},
        }

    @property
    def feature_columns(self) -> list[str]:
        from features.transforms import feature_columns

        return feature_columns(self)

    @property
    def rul_per_cycle(self) -> float:
        """RUL units per cycle of age: 1 for cycles, the sampling period in hours for hours."""
        return 1.0 if self.rul_unit == "cycles" else float(self.sampling_period_s) / 3600.0

    @property
    def seconds_per_rul_unit(self) -> float | None:
        """Seconds in one unit of RUL (an hour, or a cycle's sampling period; None for a
        cycle type without one): what turns a decision's "in 30 cycles" into a date."""
        return 3600.0 if self.rul_unit == "hours" else self.sampling_period_s

    @property
    def stale_after_s(self) -> float | None:
        if self.stale_after_periods is None:
            return None
        return self.stale_after_periods * float(self.sampling_period_s)

    def with_window(self, window: int) -> AssetType:
        """The same type with another feature window (tests and experiments)."""
        return self.model_copy(update={"window": int(window)})

    def describe(self) -> dict:
        """What `twinops asset-types` prints: a plain dict, units included."""
        return json.loads(self.model_dump_json(exclude_defaults=False))


def _read_declaration(path: Path) -> list[dict]:
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise AssetTypeError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raise AssetTypeError(f"{path}: empty declaration")
    items = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(i, dict) for i in items):
        raise AssetTypeError(f"{path}: a declaration is a mapping (or a list of mappings)")
    return items


def parse_asset_type(raw: dict, origin: str) -> AssetType:
    """One declaration -> AssetType; an error names the origin, the type and each field."""
    try:
        return AssetType.model_validate(raw)
    except ValidationError as exc:
        name = raw.get("name", "?") if isinstance(raw, dict) else "?"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(type)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise AssetTypeError(f"{origin}: asset type {name!r}: {problems}") from None


def _declarations(folder: Path | None, inline_json: str) -> dict[str, AssetType]:
    found: dict[str, AssetType] = {}
    origins: dict[str, str] = {}

    def add(raw: dict, origin: str) -> None:
        spec = parse_asset_type(raw, origin)
        if spec.name in found and origins[spec.name] != "built in":
            raise AssetTypeError(
                f"{origin}: asset type {spec.name!r} is already declared in {origins[spec.name]}"
            )
        found[spec.name], origins[spec.name] = spec, origin

    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        for raw in _read_declaration(path):
            spec = parse_asset_type(raw, str(path))
            found[spec.name], origins[spec.name] = spec, "built in"
    if folder is not None:
        if not folder.is_dir():
            raise AssetTypeError(f"asset_types_dir {folder} is not a folder")
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            for raw in _read_declaration(path):
                add(raw, str(path))
    for name, raw in json.loads(inline_json).items():
        if not isinstance(raw, dict):
            raise AssetTypeError(f"twinops.yaml asset_types.{name}: a declaration is a mapping")
        add({"name": name, **raw}, f"twinops.yaml asset_types.{name}")
    return found


@functools.lru_cache(maxsize=32)
def _cached(folder: str | None, inline_json: str, stamp: tuple) -> dict[str, AssetType]:
    return _declarations(Path(folder) if folder else None, inline_json)


def _stamp(folder: Path | None) -> tuple:
    """Modification times of the declaration files: an edited file is read again."""
    paths = sorted(BUILTIN_DIR.glob("*.yaml"))
    if folder is not None and folder.is_dir():
        paths += sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    return tuple((str(p), p.stat().st_mtime_ns) for p in paths)


def load_asset_types(
    folder: Path | None = None, inline: dict | None = None
) -> dict[str, AssetType]:
    """Every declared type: the built-ins, then `folder`'s files, then inline declarations.

    A user's declaration may replace a built-in of the same name (a plant's own turbofan
    ranges); declaring one name twice among the user's own is an error.
    """
    inline_json = json.dumps(inline or {}, sort_keys=True, default=str)
    return dict(_cached(str(folder) if folder else None, inline_json, _stamp(folder)))


def builtin(name: str) -> AssetType:
    """A built-in type by name (tests and readers that need one without settings)."""
    types = load_asset_types()
    if name not in types:
        raise KeyError(f"no built-in asset type {name!r}: {', '.join(sorted(types))}")
    return types[name]
