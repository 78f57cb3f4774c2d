"""The prediction logic behind POST /predict, as a plain function.

    PredictRequest ─► fetch_features(asset_ids) ─► frame, one row per asked asset
                          │ unknown assets (no online features) ─► per-item error
                          ▼
                      predictor.predict(known rows, horizon) ─► rul, interval, p_fail, health
                          │
                          │ feature_timestamp, age, stale (age > the type's staleness limit)
                          ├─► log.append(answered items + their features)
                          ▼
                      PredictResponse (request order kept, model version of THIS call)

Why a plain function: it is the whole behaviour of the endpoint, and a plain
function with injected collaborators (a predictor, a feature fetcher, a log)
is testable with fakes in milliseconds, without BentoML, Feast or MLflow. The
BentoML service only wires real collaborators into it.

Why per-item errors: one unknown or stale asset must not fail a fleet-wide
request (and must never be a 500); the client gets every answer it can.

A fleet mixes asset types: `predict_fleet` splits a request by the type of each asset
(the asset registry says which), answers each part with `predict_assets` and its type's
`Lane` (champion, online reader, staleness limit) and puts the answers back in order.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from serving.schemas import Prediction, PredictionError, PredictRequest, PredictResponse

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from features.online import OnlineRows
    from features.prediction_log import PredictionLog
    from training.registry import LoadedModel

logger = logging.getLogger(__name__)

UNKNOWN_ASSET = "unknown asset: no online features"
UNREGISTERED_ASSET = "unknown asset: not in the asset registry"
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
    alias: str | None = None

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, alias: str | None = None) -> ServedModel:
        """The served face of training.registry.load_by_alias's result."""
        return cls(predictor=loaded.predictor, name=str(loaded.name),
                   version=str(loaded.version), alias=alias)


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


def _finite(*values: Any) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in values)
    except (TypeError, ValueError):
        return False


def freshness(
    epoch_s: float, ttl: timedelta | None, now: datetime
) -> tuple[str | None, float | None, bool]:
    """(ISO timestamp, age in seconds, stale?) of one feature row.

    Feast does not apply the feature view's TTL to online reads: a row
    materialised a year ago is served as if it were fresh. Serving flags it.
    """
    if not math.isfinite(epoch_s):
        return None, None, False
    ts = datetime.fromtimestamp(epoch_s, UTC)
    age = (now - ts).total_seconds()
    return ts.isoformat(), age, bool(ttl is not None and age > ttl.total_seconds())


def rows_from_frame(frame: pd.DataFrame, asked: list[str]) -> OnlineRows:
    """A fetcher's frame (Feast's online_features, a fake, a window) -> OnlineRows, `asked` order.

    An asset the fetcher left out becomes an unknown row; duplicates are dropped.
    """
    import numpy as np
    import pandas as pd

    from features.online import OnlineRows

    if frame["asset_id"].astype(str).tolist() != asked:
        frame = frame.drop_duplicates("asset_id").set_index(frame["asset_id"].astype(str))
        frame = frame.reindex(asked).reset_index(drop=True)
        frame["asset_id"] = asked
    known = known_mask(frame).to_numpy(dtype=bool)
    skip = {*ID_COLUMNS, *FOUND_FLAGS, *MISSING_FLAGS}
    columns = [c for c in frame.columns if c not in skip]
    values = frame[columns].to_numpy(dtype="float64", na_value=np.nan)
    if "feature_timestamp" in frame.columns:
        ts = pd.to_datetime(frame["feature_timestamp"], utc=True)
        secs = np.where(ts.isna(), np.nan, ts.astype("int64") / 1e9)
    else:
        secs = np.full(len(frame), np.nan)
    return OnlineRows(list(asked), known, secs.astype("float64"), values, columns)


def _run_model(model: ServedModel, rows: OnlineRows, pick: np.ndarray, horizon: float) -> dict:
    """Outputs (column -> array) for rows[pick]; RULPredictor's numpy path when it has one."""
    import pandas as pd

    predictor = model.predictor
    needed = getattr(predictor, "feature_columns", None)
    if hasattr(predictor, "predict_array") and needed is not None:
        position = {c: j for j, c in enumerate(rows.columns)}
        x = rows.values[pick][:, [position[c] for c in needed]]
        return predictor.predict_array(x, horizon)
    frame = pd.DataFrame(rows.values[pick], columns=rows.columns)
    frame.insert(0, "asset_id", [rows.asset_ids[i] for i in pick])
    out = predictor.predict(frame, horizon=horizon).reset_index(drop=True)
    if len(out) != len(frame):
        raise RuntimeError(f"predictor returned {len(out)} rows for {len(frame)} assets")
    return {c: out[c].to_numpy() for c in out.columns}


def predict_assets(
    request: PredictRequest,
    *,
    model: ServedModel,
    fetch_features: Callable[[Sequence[str]], pd.DataFrame | OnlineRows],
    default_horizon: float,
    log: PredictionLog | None = None,
    ttl: timedelta | None = None,
    now: datetime | None = None,
    asset_type: str | None = None,
    rul_unit: str = "cycles",
) -> PredictResponse:
    """Answer one request with ONE model (the caller reads the hot-swapped model once).

    `fetch_features` may return OnlineRows (the fast reader) or a DataFrame like
    features.store.online_features (Feast, fakes); no pandas on the fast path.
    `ttl`: features older than this are answered with stale=true (the asset type's
    staleness limit). `asset_type` / `rul_unit` name what the answers are about.
    """
    import numpy as np

    from features.online import OnlineRows

    horizon = request.horizon or default_horizon
    now = now or datetime.now(UTC)
    asked = list(request.asset_ids)
    unique = list(dict.fromkeys(asked))  # a repeated id is scored (and logged) once
    fetched = fetch_features(unique)
    rows = fetched if isinstance(fetched, OnlineRows) else rows_from_frame(fetched, unique)
    pick = np.flatnonzero(rows.found)
    outputs = _run_model(model, rows, pick, horizon) if len(pick) else {}

    answers: dict[str, Prediction | PredictionError] = {}
    to_log: list[dict[str, Any]] = []
    for k, i in enumerate(pick):
        asset_id = str(rows.asset_ids[i])
        core = [float(outputs[c][k]) for c in ("rul", "rul_lower", "rul_upper", "p_fail",
                                                "health")]
        if not _finite(*core):
            answers[asset_id] = PredictionError(asset_id=asset_id, error=NOT_FINITE)
            continue
        level = float(outputs["interval_level"][k]) if "interval_level" in outputs else None
        ts_iso, age, stale = freshness(float(rows.feature_ts[i]), ttl, now)
        pred = Prediction(
            asset_id=asset_id,
            rul=core[0],
            rul_lower=core[1],
            rul_upper=core[2],
            interval_level=level if _finite(level) else None,
            p_fail=core[3],
            horizon=horizon,
            health=core[4],
            asset_type=asset_type,
            rul_unit=rul_unit,
            model_name=model.name,
            model_version=model.version,
            model_alias=model.alias,
            feature_timestamp=ts_iso,
            feature_age_s=age,
            stale=stale,
        )
        answers[asset_id] = pred
        features = dict(zip(rows.columns, rows.values[i].tolist(), strict=True))
        features["feature_timestamp"] = ts_iso
        to_log.append({**pred.model_dump(), "features": features})

    if request.explain and answers:
        _attach_explanations(answers, model, rows, pick)
    if log is not None and to_log:
        try:
            log.append(to_log)
        except Exception:  # noqa: BLE001 — the answer matters more than the audit row
            logger.exception("prediction log append failed (%d rows lost)", len(to_log))

    items = [answers.get(a) or PredictionError(asset_id=a, error=UNKNOWN_ASSET) for a in asked]
    return PredictResponse(model_name=model.name, model_version=model.version,
                           model_alias=model.alias, predictions=items)


def _attach_explanations(answers: dict, model: ServedModel, rows: OnlineRows,
                         pick: np.ndarray) -> None:
    """Set `explanation` on the answered Predictions of `rows[pick]`, in one batch
    (serving.explain). A predictor without a network (a fake) gets none."""
    from serving.explain import explain_rows

    predictor = model.predictor
    if getattr(predictor, "net", None) is None:
        return
    keep = [i for i in pick if isinstance(answers.get(str(rows.asset_ids[i])), Prediction)]
    position = {c: j for j, c in enumerate(rows.columns)}
    x = rows.values[keep][:, [position[c] for c in predictor.feature_columns]]
    for i, explanation in zip(keep, explain_rows(predictor, x), strict=True):
        answers[str(rows.asset_ids[i])].explanation = explanation


@dataclass
class Lane:
    """What serving holds per asset type: its champion (`holder.current`, hot-swapped), the
    online reader of its feature view, its staleness limit and its default horizon; for
    decisions (serving.fleet) the RUL units per age cycle and the seconds per RUL unit
    (None: a cycle type without a time per cycle, so no dates)."""

    asset_type: str
    rul_unit: str
    holder: Any
    fetch: Callable[[Sequence[str]], Any]
    stale_after: timedelta | None
    horizon: float
    rul_per_cycle: float = 1.0
    seconds_per_unit: float | None = None


def unserved(kind: str, ids: Sequence[str], reason: str | None = None
             ) -> dict[str, PredictionError]:
    """The per-item answer of assets whose type has no served champion (`reason`: why)."""
    why = f": {reason}" if reason else ""
    return {a: PredictionError(asset_id=a, error=f"no model of asset type {kind!r} is being "
                               f"served{why}") for a in ids}


def make_lane(typed, holder, reader) -> Lane:
    """The Lane of one type: `typed` its Settings, `holder` what holds its champion
    (`.current`), `reader` its online reader (features.online.make_online_reader)."""
    stale = typed.type.stale_after_s
    return Lane(asset_type=typed.asset_type, rul_unit=typed.type.rul_unit, holder=holder,
                fetch=reader, stale_after=timedelta(seconds=stale) if stale else reader.ttl,
                horizon=typed.horizon, rul_per_cycle=typed.type.rul_per_cycle,
                seconds_per_unit=typed.type.seconds_per_rul_unit)


def predict_fleet(
    request: PredictRequest,
    *,
    lanes: dict[str, Lane],
    type_of: Callable[[Sequence[str]], dict[str, str]],
    log: PredictionLog | None = None,
    now: datetime | None = None,
    refused: dict[str, str] | None = None,
) -> PredictResponse:
    """Answer a request whose assets may be of several types, each from its type's lane.

    `type_of(ids)` -> {id: type} for the registered ones. An id not registered, or of a
    type without a served champion, gets a per-item error. The top-level model fields
    name the model when one answered everything, else they are null.

    `refused`: {type: why} for types whose champion serving refused (serving.hot_swap: a
    tampered or unloadable version, nothing served). When no asked asset is of a served
    type and some are of a refused one, the whole request is a 503 naming the reason
    (ApiError): the server, not the request, is at fault, and a client should retry later.
    In a request that mixes in served types, those are answered and the refused type's
    assets get a per-item error with the reason.
    """
    from serving.errors import ApiError

    refused = refused or {}
    asked = list(request.asset_ids)
    kinds = type_of(list(dict.fromkeys(asked)))
    present = set(kinds.values())
    if present & set(refused) and not present & set(lanes):
        reasons = [f"{kind}: {refused[kind]}" for kind in sorted(present & set(refused))]
        raise ApiError(503, "no model is being served for these assets: " + "; ".join(reasons),
                       [{"loc": ["asset_ids"], "msg": r} for r in reasons])
    answers: dict[str, Prediction | PredictionError] = {}
    models = set()
    for kind in sorted(present):
        ids = [a for a in dict.fromkeys(asked) if kinds.get(a) == kind]
        lane = lanes.get(kind)
        if lane is None:
            answers.update(unserved(kind, ids, refused.get(kind)))
            continue
        model = lane.holder.current  # read ONCE: this part comes from one version
        part = predict_assets(
            PredictRequest.model_construct(asset_ids=ids, horizon=request.horizon,
                                           explain=request.explain),
            model=model, fetch_features=lane.fetch, default_horizon=lane.horizon, log=log,
            ttl=lane.stale_after, now=now, asset_type=kind, rul_unit=lane.rul_unit)
        models.add((model.name, model.version, model.alias))
        answers.update({p.asset_id: p for p in part.predictions})
    items = [answers.get(a) or PredictionError(asset_id=a, error=UNREGISTERED_ASSET)
             for a in asked]
    name, version, alias = next(iter(models)) if len(models) == 1 else (None, None, None)
    return PredictResponse(model_name=name, model_version=version, model_alias=alias,
                           predictions=items)
