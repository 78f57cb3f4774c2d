"""Request and response models of POST /fleet/risk and POST /recommend (pure pydantic).

Limits are stated in the schema, so the OpenAPI document says what the server refuses.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import AssetId, Horizon, PredictionError

#: Most assets one /recommend call prices (each integrates a predictive distribution).
MAX_RECOMMEND = 256
#: Largest page of a fleet risk ranking.
MAX_PAGE_SIZE = 1000


class FleetRiskRequest(BaseModel):
    """Body of POST /fleet/risk."""

    model_config = ConfigDict(extra="forbid")

    asset_type: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="Rank only this type's assets; default: every served type.")
    horizon: Horizon | None = Field(
        default=None, description="p_fail = P(RUL <= horizon), in each type's RUL unit; "
        "default: each asset type's horizon.")
    # strict: `true` is no page number (lax pydantic read it as 1)
    page: int = Field(default=1, ge=1, le=1_000_000, strict=True,
                      description="1-based page number.")
    page_size: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE, strict=True)


class RiskItem(BaseModel):
    """One asset in the ranking; risk and the RUL fields are null without current features."""

    rank: int
    asset_id: str
    asset_type: str
    rul_unit: str
    #: p_fail x criticality: what the ranking orders by.
    risk: float | None
    p_fail: float | None
    horizon: float
    criticality: float
    rul: float | None
    rul_lower: float | None
    rul_upper: float | None
    #: Age of the asset's last feature row (its last reading), in seconds.
    last_reading_age_s: float | None
    #: ok | stale (older than the type's staleness limit) | no_features
    data_quality: str


class FleetRiskResponse(BaseModel):
    #: Assets ranked (in service), and those left out: failed, not reported since.
    total: int
    out_of_service: int = 0
    page: int
    page_size: int
    items: list[RiskItem]


class RecommendRequest(BaseModel):
    """Body of POST /recommend."""

    model_config = ConfigDict(extra="forbid")

    asset_ids: list[AssetId] = Field(min_length=1, max_length=MAX_RECOMMEND)
    horizon: Horizon | None = Field(
        default=None, description="How far ahead (RUL unit) parts are ordered: maintenance "
        "due within the lead time plus this is planned now. Default: the type's horizon.")


class Recommendation(BaseModel):
    """A maintenance proposal for one asset: a person decides; nothing is scheduled."""

    asset_id: str
    asset_type: str
    rul_unit: str
    #: run | inspect | plan_maintenance | stop_now
    action: str
    #: Planned maintenance from now, in rul_unit, and as a date (null where the type has
    #: no time per cycle); latest_safe_*: when the risk of failing first passes the tolerance.
    due_in: float | None
    due_date: str | None
    latest_safe_in: float | None
    latest_safe_date: str | None
    #: Expected cost per rul_unit of the asset's life: the plan, run-to-failure, and the
    #: plant's fixed interval (null without one).
    cost_rate: float | None
    cost_rate_run_to_failure: float | None
    cost_rate_fixed_interval: float | None
    p_fail_before_parts: float | None
    rul: float
    rul_lower: float
    rul_upper: float
    reasons: list[str]
    model_name: str
    model_version: str


class RecommendResponse(BaseModel):
    recommendations: list[Recommendation | PredictionError]
