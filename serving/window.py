"""POST /predict_window: score a window of raw readings with the offline transform.

    readings (JSON rows of the asset's type: its columns, nothing else)
        ─► one asset? at least history_length(window) readings? (else 400 naming `readings`)
        ─► features.validation.validate_readings(type)  (types, ranges, duplicates: 400 per row)
        ─► features.transforms.latest_window_features(type)   THE offline transform
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


def window_frame(readings: Sequence[dict[str, Any]], asset_type) -> pd.DataFrame:
    """Validated readings of one asset of `asset_type` -> the online-features frame of its
    newest reading."""
    from features.contract import ASSET_ID, QUARANTINE_REASON, TIMESTAMP
    from features.store import FEATURE_TIMESTAMP, FOUND
    from features.transforms import history_length, latest_window_features
    from features.validation import json_row_problems, validate_readings

    window = asset_type.window
    known = set(asset_type.reading_columns)
    for i, r in enumerate(readings):
        unknown = sorted(set(r) - known)
        if unknown:
            raise ApiError(400, f"reading {i}: unknown field(s) for asset type "
                                f"{asset_type.name!r}: {', '.join(unknown)}",
                           [{"loc": ["readings", i, f], "msg": "unknown field"} for f in unknown])
        problems = json_row_problems(r, asset_type)
        if problems:
            raise ApiError(400, f"reading {i}: {problems[0]}",
                           [{"loc": ["readings", i, p.split(":")[0]], "msg": p}
                            for p in problems])
    result = validate_readings(pd.DataFrame(list(readings)), asset_type)
    if result.missing_columns:
        raise ApiError(400, f"readings lack column(s) of asset type {asset_type.name!r}: "
                            f"{', '.join(result.missing_columns)}",
                       [{"loc": ["readings", c], "msg": "field required"}
                        for c in result.missing_columns])
    if len(result.quarantined):
        detail = [{"loc": ["readings", int(i)], "msg": str(reason)}
                  for i, reason in result.quarantined[QUARANTINE_REASON].items()]
        raise ApiError(400, f"{len(detail)} reading(s) rejected: {detail[0]['msg']}", detail)
    assets = sorted(set(result.valid[ASSET_ID].astype(str)))
    if len(assets) != 1:
        raise ApiError(400, f"readings must be of ONE asset, got {len(assets)}: {assets[:5]}",
                          [{"loc": ["readings", ASSET_ID], "msg": "more than one asset_id"}])
    needed = history_length(window)
    if len(readings) < needed:
        raise ApiError(400, f"window too short: {len(readings)} readings, need at least "
                               f"{needed}", [{"loc": ["readings"], "msg": "too short"}])
    feats = latest_window_features(result.valid, asset_type)
    feats = feats.rename(columns={TIMESTAMP: FEATURE_TIMESTAMP})
    feats.insert(1, FOUND, True)
    return feats


def predict_window(readings: Sequence[dict[str, Any]], horizon: float | None, *, asset_type,
                   **predict_kwargs: Any) -> PredictResponse:
    from serving.predict import predict_assets

    frame = window_frame(readings, asset_type)
    asset = str(frame["asset_id"].iloc[0])
    return predict_assets(PredictRequest(asset_ids=[asset], horizon=horizon),
                          fetch_features=lambda _ids: frame, asset_type=asset_type.name,
                          rul_unit=asset_type.rul_unit, **predict_kwargs)
