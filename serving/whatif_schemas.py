"""Request and response models of POST /whatif (pure pydantic; docs/whatif.md).

The profile's field names and ranges depend on the asset's type (its declared settings), so
they are checked against the type by serving.whatif.check_profile, which names the field
(`profile.V`) in its 400; the static limits here bound the work before that.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import AssetId, Horizon
from serving.whatif import MAX_SAMPLES

#: Strict: a JSON number only (lax pydantic took `true` as 1.0).
Value = Annotated[float, Field(allow_inf_nan=False, strict=True)]


class WhatIfRequest(BaseModel):
    """Body of POST /whatif."""

    model_config = ConfigDict(extra="forbid")

    asset_id: AssetId
    profile: dict[Annotated[str, Field(min_length=1, max_length=64)], Value] = Field(
        min_length=1, max_length=32, description="Future operating settings, {name: value} "
        "in the type's declared setting names and units (pump: Tamb K, V volts, pdisch / "
        "psuc Pa, wsync rad/s), held constant from the last reading on. Settings left out "
        "keep their current value (the pump's wsync follows V at its current ratio).")
    horizon: Horizon | None = Field(
        default=None, description="p_fail = P(RUL <= horizon), in the type's RUL unit; "
        "default: the type's horizon.")
    n_samples: Annotated[int, Field(ge=10, le=MAX_SAMPLES, strict=True)] | None = Field(
        default=None, description="Physics only: simulated samples per profile "
        "(default serving.whatif.N_SAMPLES).")


class Scenario(BaseModel):
    """The RUL under one profile (rul_unit). Physics: quantiles of the simulated samples,
    null where the quantile lies beyond the simulated time (`censored` samples still ran
    then); learned: the champion's prediction and conformal interval."""

    profile: dict[str, float]
    rul: float | None
    rul_lower: float | None
    rul_upper: float | None
    p_fail: float
    censored: int | None = None
    #: Share of the samples that each failure mode ends (physics only).
    failure_modes: dict[str, float] = {}


class WhatIfResponse(BaseModel):
    asset_id: str
    asset_type: str
    rul_unit: str
    #: "physics (ProgPy particle filter + simulation to threshold)" or
    #: "learned model, extrapolation"
    method: str
    horizon: float
    interval_level: float
    current: Scenario
    requested: Scenario
    #: Requested settings outside the range the model was trained on (learned only).
    out_of_range: list[str] = []
    warnings: list[str] = []
    #: How the answer was computed: samples, readings used, the estimated wear state
    #: (physics), the model version (learned), seconds spent.
    details: dict = {}
