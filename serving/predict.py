"""The prediction logic behind POST /predict, as a plain function.

    PredictRequest ─► fetch_features(asset_ids) ─► frame, one row per asked asset
                          │ unknown assets (no online features) ─► per-item error
                          ▼
                      predictor.predict(known rows, horizon) ─► rul, interval, p_fail, health
                          │
                          ├─► PredictionLog.append(answered items + their features)
                          ▼
                      PredictResponse (request order kept)

Why a plain function: it is the whole behaviour of the endpoint, and a plain
function with injected collaborators (a predictor, a feature fetcher, a log)
is testable with fakes in milliseconds, without BentoML, Feast or MLflow. The
BentoML service only wires real collaborators into it.

Why per-item errors: one unknown or stale asset must not fail a fleet-wide
request (and must never be a 500); the client gets every answer it can.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from serving.schemas import Prediction, PredictionError, PredictRequest, PredictResponse

if TYPE_CHECKING:
    import pandas as pd

    from serving.prediction_log import PredictionLog

logger = logging.getLogger(__name__)

UNKNOWN_ASSET = "unknown asset: no online features"
NOT_FINITE = "prediction failed: model returned a non-finite value"

#: Columns of the online-features frame that are identity / bookkeeping, not
#: model inputs.
ID_COLUMNS = ("asset_id", "feature_timestamp", "event_timestamp", "timestamp")
#: Boolean columns by which a feature fetcher may flag whether an asset was found.
FOUND_FLAGS = ("found", "is_known", "known")
MISSING_FLAGS = ("missing", "is_missing", "unknown")


class Predictor(Protocol):
    def predict(self, features: pd.DataFrame, horizon: int) -> pd.DataFrame: ...


@dataclass(frozen=True)
class ServedModel:
    """The model being served: the predictor and its registry identity."""

    predictor: Predictor
    name: str
    version: str

    @classmethod
    def from_loaded(cls, loaded: Any) -> ServedModel:
        """Adapt training.registry.load_by_alias's result (object or tuple)."""
        if isinstance(loaded, tuple):
            predictor, name, version = loaded
        else:
            predictor, name, version = loaded.predictor, loaded.name, loaded.version
        return cls(predictor=predictor, name=str(name), version=str(version))


def check_feature_compatibility(model: ServedModel, available: Sequence[str]) -> None:
    """Fail at startup, not per request, if the model needs features serving cannot fetch.

    A model trained on a column the online store does not serve (a renamed
    label column, a feature dropped from the FeatureService) would otherwise
    turn every request into a 500.
    """
    needed = getattr(model.predictor, "feature_columns", None)
    if needed is None:
        return
    missing = [c for c in needed if c not in set(available)]
    if missing:
        raise RuntimeError(
            f"{model.name} v{model.version} needs feature(s) the online store does not "
            f"serve: {missing}"
        )


def known_mask(frame: pd.DataFrame) -> pd.Series:
    """True for rows that carry real online features.

    Accepts the conventions a feature fetcher may use: an explicit flag column
    (found / missing), else "every feature is null" means unknown.
    """
    for flag in FOUND_FLAGS:
        if flag in frame.columns:
            return frame[flag].fillna(False).astype(bool)
    for flag in MISSING_FLAGS:
        if flag in frame.columns:
            return ~frame[flag].fillna(True).astype(bool)
    feature_cols = [c for c in frame.columns if c not in ID_COLUMNS]
    if not feature_cols:
        return frame["asset_id"].notna()
    return frame[feature_cols].notna().any(axis=1)


def _feature_record(row: pd.Series) -> dict[str, Any]:
    skip = {"asset_id", *FOUND_FLAGS, *MISSING_FLAGS}
    return {k: v for k, v in row.items() if k not in skip}


def _finite(*values: Any) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def predict_assets(
    request: PredictRequest,
    *,
    model: ServedModel,
    fetch_features: Callable[[Sequence[str]], pd.DataFrame],
    default_horizon: int,
    log: PredictionLog | None = None,
) -> PredictResponse:
    """Answer one request; log the answered predictions (best effort)."""
    horizon = request.horizon or default_horizon
    asked = list(request.asset_ids)
    unique = list(dict.fromkeys(asked))  # a repeated id is scored (and logged) once
    frame = fetch_features(unique)
    # Align to the request whatever order / duplicates the fetcher returned;
    # an asset the fetcher left out becomes an all-null (unknown) row.
    frame = frame.drop_duplicates("asset_id").set_index("asset_id", drop=False)
    frame = frame.reindex(unique)
    frame["asset_id"] = unique
    frame = frame.reset_index(drop=True)

    known = known_mask(frame)
    known_rows = frame[known].reset_index(drop=True)
    outputs = None
    if len(known_rows):
        outputs = model.predictor.predict(known_rows, horizon=horizon).reset_index(drop=True)
        if len(outputs) != len(known_rows):
            raise RuntimeError(
                f"predictor returned {len(outputs)} rows for {len(known_rows)} assets"
            )

    answers: dict[str, Prediction | PredictionError] = {}
    to_log: list[dict[str, Any]] = []
    for i, row in known_rows.iterrows():
        out = outputs.iloc[i]
        asset_id = str(row["asset_id"])
        core = (out["rul"], out["rul_lower"], out["rul_upper"], out["p_fail"], out["health"])
        if not _finite(*core):
            answers[asset_id] = PredictionError(asset_id=asset_id, error=NOT_FINITE)
            continue
        level = out.get("interval_level")
        pred = Prediction(
            asset_id=asset_id,
            rul=float(out["rul"]),
            rul_lower=float(out["rul_lower"]),
            rul_upper=float(out["rul_upper"]),
            interval_level=float(level) if _finite(level) else None,
            p_fail=float(out["p_fail"]),
            horizon=horizon,
            health=float(out["health"]),
            model_name=model.name,
            model_version=model.version,
        )
        answers[asset_id] = pred
        to_log.append({**pred.model_dump(), "features": _feature_record(row)})

    if log is not None and to_log:
        try:
            log.append(to_log)
        except Exception:  # noqa: BLE001 — the answer matters more than the audit row
            logger.exception("prediction log append failed (%d rows lost)", len(to_log))

    items = [answers.get(a) or PredictionError(asset_id=a, error=UNKNOWN_ASSET) for a in asked]
    return PredictResponse(model_name=model.name, model_version=model.version, predictions=items)
