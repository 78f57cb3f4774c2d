"""POST /predict_window: score a window of raw readings with the offline transform.

    readings (pydantic-checked: types, finite values, the contract's sensor set)
        ─► one asset? at least history_length(window) readings? (else 400 naming `readings`)
        ─► features.validation.validate_readings                (duplicates, order: 400 per row)
        ─► features.transforms.latest_window_features(window)   THE offline transform
        ─► serving.predict.predict_assets (same path, same log as POST /predict)

Why the same transform call: online/offline skew is the failure this endpoint
could introduce; `latest_window_features` is what the offline pipeline's
`window_features` computes for the last row, bit for bit
(tests/integration/test_serving_http.py checks it through HTTP).
Why at least history_length(window) readings (all the transform's windows):
with fewer, the features describe a younger asset than the readings came from
(the transform would average fewer rows), which is only right at the true
start of life; a client sending a short window is almost always truncating
by mistake.
The `*_vs_start` features compare the asset with its own first readings
(features.transforms.START_READINGS of them), so the request should carry the
asset's history from its first reading; its first START_READINGS and last
history_length(window) readings are enough (`feature_history`: what lies between
enters no feature). The endpoint cannot tell an asset's first reading from a later
one: with only recent readings, the earliest ones sent stand in for the asset's
start, as they would offline for an asset first recorded then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from serving.errors import ApiError
from serving.schemas import PredictRequest, PredictResponse


def window_frame(readings: Sequence[dict[str, Any]], window: int) -> pd.DataFrame:
    """Validated readings of one asset -> the online-features frame of its newest reading."""
    from features.contract import ASSET_ID, QUARANTINE_REASON, TIMESTAMP
    from features.store import FEATURE_TIMESTAMP, FOUND
    from features.transforms import history_length, latest_window_features
    from features.validation import validate_readings

    assets = sorted({r[ASSET_ID] for r in readings})
    if len(assets) != 1:
        raise ApiError(400, f"readings must be of ONE asset, got {len(assets)}: {assets[:5]}",
                          [{"loc": ["readings", ASSET_ID], "msg": "more than one asset_id"}])
    needed = history_length(window)
    if len(readings) < needed:
        raise ApiError(400, f"window too short: {len(readings)} readings, need at least "
                               f"{needed}", [{"loc": ["readings"], "msg": "too short"}])
    result = validate_readings(pd.DataFrame(list(readings)))
    if len(result.quarantined):
        detail = [{"loc": ["readings", int(i)], "msg": str(reason)}
                  for i, reason in result.quarantined[QUARANTINE_REASON].items()]
        raise ApiError(400, f"{len(detail)} reading(s) rejected", detail)
    feats = latest_window_features(result.valid, window)
    feats = feats.rename(columns={TIMESTAMP: FEATURE_TIMESTAMP})
    feats.insert(1, FOUND, True)
    return feats


def predict_window(readings: Sequence[dict[str, Any]], horizon: int | None, *, window: int,
                   **predict_kwargs: Any) -> PredictResponse:
    from serving.predict import predict_assets

    frame = window_frame(readings, window)
    asset = str(frame["asset_id"].iloc[0])
    return predict_assets(PredictRequest(asset_ids=[asset], horizon=horizon),
                          fetch_features=lambda _ids: frame, **predict_kwargs)
