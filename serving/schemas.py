"""Request and response models of the prediction API (pure pydantic, no I/O).

    JSON body ─► PredictRequest (BentoML validates: 400 + field name on error)
              ─► parse_request(..., max_batch)   (the configured batch limit)
              ─► predict_assets ─► PredictResponse ─► JSON

Why two validation steps: BentoML validates the body against the *static*
model before our code runs, but the batch limit is configuration
(`settings.serving.max_batch`), read when the service starts, not at import.
So the static model carries a hard ceiling and `parse_request` re-validates
with the configured limit through pydantic's validation context. Both raise
`pydantic.ValidationError`, which BentoML answers with 400 and a `detail`
list whose `loc` names the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

#: Ceiling on asset_ids per request whatever the configuration says: bounds
#: the work one request can cause before the configured limit is checked.
HARD_MAX_BATCH = 10_000
#: Longest horizon (RUL units) accepted: a guard against nonsense, not a model limit.
MAX_HORIZON = 100_000
#: Assets per request with `explain: true`: an explanation costs ~1.5 ms of CPU per asset
#: (docs/explanations.md), so this bounds one such request to ~0.1 s.
MAX_EXPLAINED = 64

AssetId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]
#: A failure horizon in RUL units: > 0, finite, at most MAX_HORIZON. Strict: a JSON number
#: only (lax pydantic took `true` as 1.0 and "5" as 5.0; the document says number).
Horizon = Annotated[float, Field(gt=0, le=MAX_HORIZON, allow_inf_nan=False, strict=True)]


class PredictRequest(BaseModel):
    """Body of POST /predict."""

    model_config = ConfigDict(extra="forbid")

    asset_ids: list[AssetId] = Field(
        min_length=1,
        max_length=HARD_MAX_BATCH,
        description="Assets to score, answered in this order.",
    )
    horizon: Horizon | None = Field(
        default=None,
        description="RUL units ahead (each asset's type says: cycles or hours) for "
        "p_fail = P(RUL <= horizon); default: the asset type's horizon.",
    )
    explain: StrictBool = Field(
        default=False,
        description="Also return each answered asset's `explanation`: per-sensor "
        "contributions to the RUL (integrated gradients; docs/explanations.md). At most "
        f"{MAX_EXPLAINED} asset_ids per request when true.",
    )

    @field_validator("explain")
    @classmethod
    def _explained_within_cap(cls, value: bool, info: ValidationInfo) -> bool:
        asked = len(info.data.get("asset_ids") or ())
        if value and asked > MAX_EXPLAINED:
            raise ValueError(f"explain: true takes at most {MAX_EXPLAINED} asset_ids, "
                             f"got {asked}")
        return value

    @field_validator("asset_ids")
    @classmethod
    def _within_configured_batch(cls, value: list[str], info: ValidationInfo) -> list[str]:
        max_batch = (info.context or {}).get("max_batch")
        if max_batch is not None and len(value) > max_batch:
            raise ValueError(f"at most {max_batch} asset_ids per request, got {len(value)}")
        return value


def parse_request(payload: dict[str, Any] | PredictRequest, *, max_batch: int) -> PredictRequest:
    """Validate a request body against the configured batch limit.

    Raises pydantic.ValidationError (field `asset_ids` / `horizon` / `explain` in `loc`).
    """
    if isinstance(payload, PredictRequest):
        payload = payload.model_dump()
    return PredictRequest.model_validate(payload, context={"max_batch": max_batch})


class Driver(BaseModel):
    channel: str = Field(description="A sensor or operating setting (or `age`).")
    contribution: float = Field(description="RUL units this channel adds (negative: takes "
                                "away) relative to the baseline RUL.")


class Explanation(BaseModel):
    """Why this RUL (serving.explain, docs/explanations.md): integrated gradients of the
    served network's RUL (the ensemble mean) from the training-mean state, summed per channel.

    rul = baseline_rul + sum(contributions.values()) - completeness_gap.
    """

    method: str = Field("integrated_gradients", description="Attribution method.")
    baseline: str = Field("training_mean", description="Reference state: every feature at "
                          "its training mean (0 once standardised).")
    baseline_rul: float = Field(description="The model's RUL for the baseline state.")
    contributions: dict[str, float] = Field(description="Channel -> RUL units it moves the "
                                            "RUL away from the baseline RUL (the channel's "
                                            "window features summed).")
    top_drivers: list[Driver] = Field(description="The largest |contributions|, largest first.")
    imputed: list[str] = Field(default_factory=list, description="Channels missing in this "
                               "row (imputed with the training mean): their 0 means 'not "
                               "measured', not 'normal'.")
    completeness_gap: float = Field(description="sum(contributions) - (rul - baseline_rul): "
                                    "the quadrature error; ~0 means the parts are exact.")


class Prediction(BaseModel):
    """One answered asset."""

    asset_id: str
    rul: float
    rul_lower: float
    rul_upper: float
    interval_level: float | None
    p_fail: float
    horizon: float
    health: float
    model_name: str
    model_version: str
    model_alias: str | None = None
    #: The asset's type, and the unit of rul, its interval and horizon (cycles | hours).
    asset_type: str | None = None
    rul_unit: str = "cycles"
    #: Event time of the feature row used (UTC ISO-8601) and its age at answer time.
    feature_timestamp: str | None = None
    feature_age_s: float | None = None
    #: True when the features are older than the asset type's staleness limit (a few
    #: sampling periods; else the feature view's TTL): the feed of this asset stopped.
    stale: bool = False
    #: Only with `explain: true` (left out of the JSON otherwise).
    explanation: Explanation | None = Field(default=None, exclude_if=lambda v: v is None)


class PredictionError(BaseModel):
    """One asset that could not be answered (the others still are)."""

    asset_id: str
    error: str


class PredictResponse(BaseModel):
    #: The model that answered every item; null when a batch spans asset types (each
    #: prediction names its own model).
    model_name: str | None = None
    model_version: str | None = None
    model_alias: str | None = None
    predictions: list[Prediction | PredictionError]


# ---- readings / events (POST /predict_window, /ingest, /feedback) ----

FiniteFloat = Annotated[float, Field(strict=False, allow_inf_nan=False)]
StrictCycle = Annotated[int, Field(strict=True, ge=1)]


class WindowRequest(BaseModel):
    """Body of POST /predict_window: one asset's raw readings, from its first one.

    Readings are JSON objects in the columns of the asset's type, checked row by row
    (features.validation): a missing or unknown column, or a bad value, is a 400 that
    names it.
    """

    model_config = ConfigDict(extra="forbid")

    asset_type: str | None = Field(
        default=None, description="Type of the asset; default: the asset registry's, else "
        "the service's default type.")
    readings: list[dict[str, Any]] = Field(
        min_length=1, max_length=HARD_MAX_BATCH,
        description=(
            "Readings of ONE asset, any order: at least its last history_length(window) "
            "(90 by default); include its first START_READINGS readings (50), which "
            "the *_vs_start features compare against, or the earliest ones sent stand in "
            "for them. Readings in between may be left out."
        ),
    )
    horizon: Horizon | None = None


class IngestRequest(BaseModel):
    """Body of POST /ingest: new readings of any assets.

    Rows are JSON objects checked ROW BY ROW against the data contract
    (features.validation: types, NaN/inf, duplicates, order; plus unknown
    fields here): a bad row is rejected with its reason, the good rows of the
    same request are stored. Only the envelope is validated by pydantic.
    """

    model_config = ConfigDict(extra="forbid")

    readings: list[dict[str, Any]] = Field(min_length=1, max_length=HARD_MAX_BATCH)


class RejectedRow(BaseModel):
    index: int = Field(description="Position of the row in the request.")
    asset_id: str | None
    reason: str


class IngestResponse(BaseModel):
    accepted: int = Field(description="Rows stored (new or already stored identically).")
    appended: int
    already_stored: int
    rejected: list[RejectedRow]
    features_pushed: list[str] = Field(description="Assets whose online features were updated.")
    unknown_regime: int = Field(0, description=(
        "Valid rows taken in an operating regime the asset type has no fitted levels for: "
        "their sensors read as missing until the regimes are refitted."))


EventKind = Literal["failure", "maintenance"]


class Event(BaseModel):
    """A failure or maintenance event; `cycle` or `timestamp` (or both) locate it."""

    model_config = ConfigDict(extra="forbid")

    asset_id: AssetId
    event: EventKind
    cycle: StrictCycle | None = None
    timestamp: AwareDatetime | None = None

    @model_validator(mode="after")
    def _located(self) -> Event:
        if self.cycle is None and self.timestamp is None:
            raise ValueError("give `cycle` or `timestamp` (or both)")
        return self


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[Event] = Field(min_length=1, max_length=HARD_MAX_BATCH)


class FeedbackResponse(BaseModel):
    appended: int = Field(description="New events stored (a repeated event is stored once).")
    received: int
    rejected: list[dict] = Field(default_factory=list,
                                 description="Events not stored: {loc, msg} per event.")


class Health(BaseModel):
    status: str = "ok"
    model_name: str | None = None
    model_version: str | None = None
