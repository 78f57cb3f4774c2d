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

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

#: Ceiling on asset_ids per request whatever the configuration says: bounds
#: the work one request can cause before the configured limit is checked.
HARD_MAX_BATCH = 10_000
#: Longest horizon (cycles) accepted: a guard against nonsense, not a model limit.
MAX_HORIZON = 100_000

AssetId = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class PredictRequest(BaseModel):
    """Body of POST /predict."""

    model_config = ConfigDict(extra="forbid")

    asset_ids: list[AssetId] = Field(
        min_length=1,
        max_length=HARD_MAX_BATCH,
        description="Assets to score, answered in this order.",
    )
    horizon: Annotated[int, Field(strict=True, gt=0, le=MAX_HORIZON)] | None = Field(
        default=None,
        description="Cycles ahead for p_fail = P(RUL <= horizon); default from settings.",
    )

    @field_validator("asset_ids")
    @classmethod
    def _within_configured_batch(cls, value: list[str], info: ValidationInfo) -> list[str]:
        max_batch = (info.context or {}).get("max_batch")
        if max_batch is not None and len(value) > max_batch:
            raise ValueError(f"at most {max_batch} asset_ids per request, got {len(value)}")
        return value


def parse_request(payload: dict[str, Any] | PredictRequest, *, max_batch: int) -> PredictRequest:
    """Validate a request body against the configured batch limit.

    Raises pydantic.ValidationError (field `asset_ids` / `horizon` in `loc`).
    """
    if isinstance(payload, PredictRequest):
        payload = payload.model_dump()
    return PredictRequest.model_validate(payload, context={"max_batch": max_batch})


class Prediction(BaseModel):
    """One answered asset."""

    asset_id: str
    rul: float
    rul_lower: float
    rul_upper: float
    interval_level: float | None
    p_fail: float
    horizon: int
    health: float
    model_name: str
    model_version: str


class PredictionError(BaseModel):
    """One asset that could not be answered (the others still are)."""

    asset_id: str
    error: str


class PredictResponse(BaseModel):
    model_name: str
    model_version: str
    predictions: list[Prediction | PredictionError]


class Health(BaseModel):
    status: str = "ok"
    model_name: str | None = None
    model_version: str | None = None
