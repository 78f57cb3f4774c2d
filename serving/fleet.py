"""POST /fleet/risk and POST /recommend as plain functions over the serving lanes.

    asset ids of a type ─► score_lane: the online features in batches of READ_BATCH, ONE
                           vectorised model call, the freshness of each row
                              ├─► ranked_fleet: serving.decisions.rank_fleet; fleet_risk:
                              │   one page of it
                              └─► recommend_assets: serving.decisions.recommend per asset,
                                  on the champion's predictive draws and the asset's
                                  maintenance profile (features.maintenance)

Plain functions with injected collaborators (the lanes, the asset registry frame, the
profiles), as serving.predict is: tested without BentoML in milliseconds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from serving.decision_schemas import (
    FleetRiskRequest,
    FleetRiskResponse,
    Recommendation,
    RecommendRequest,
    RecommendResponse,
    RiskItem,
)
from serving.decisions import rank_fleet, recommend
from serving.predict import (
    NOT_FINITE,
    UNKNOWN_ASSET,
    UNREGISTERED_ASSET,
    Lane,
    _run_model,
    rows_from_frame,
    unserved,
)
from serving.schemas import PredictionError

#: Assets per online read: SQLite binds one parameter per id, and old builds cap a
#: statement at 999 parameters.
READ_BATCH = 900


@dataclass
class Scored:
    """A lane's answers for a list of ids (arrays aligned with it; NaN where not found)."""

    found: np.ndarray
    outputs: dict[str, np.ndarray]
    feature_age_s: np.ndarray
    stale: np.ndarray
    age: np.ndarray


def score_lane(lane: Lane, ids: list[str], horizon: float, now: datetime) -> Scored:
    """Every id of one type through the lane's champion in one model call."""
    from features.online import OnlineRows
    from features.transforms import AGE

    parts = []
    for start in range(0, len(ids), READ_BATCH):
        batch = ids[start:start + READ_BATCH]
        got = lane.fetch(batch)
        parts.append(got if isinstance(got, OnlineRows) else rows_from_frame(got, batch))
    columns = parts[0].columns if parts else []
    rows = OnlineRows(list(ids),
                      np.concatenate([p.found for p in parts]) if parts else np.zeros(0, bool),
                      np.concatenate([p.feature_ts for p in parts]) if parts else np.zeros(0),
                      np.concatenate([p.values for p in parts]) if parts else np.zeros((0, 0)),
                      list(columns))
    pick = np.flatnonzero(rows.found)
    model_out = _run_model(lane.holder.current, rows, pick, horizon) if len(pick) else {}
    outputs = {}
    for key in ("rul", "rul_lower", "rul_upper", "p_fail"):
        outputs[key] = np.full(len(ids), np.nan)
        if len(pick):
            outputs[key][pick] = np.asarray(model_out[key], dtype=np.float64)
    feature_age = now.timestamp() - rows.feature_ts
    limit = lane.stale_after.total_seconds() if lane.stale_after else np.inf
    age = (rows.values[:, columns.index(AGE)] * lane.rul_per_cycle if AGE in columns
           else np.zeros(len(ids)))
    return Scored(rows.found, outputs, feature_age, rows.found & (feature_age > limit),
                  np.nan_to_num(age, nan=0.0))


def _maybe(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def fleet_risk(request: FleetRiskRequest, *, lanes: dict[str, Lane], assets,
               criticality: dict[str, float], failed_at: dict[str, float] | None = None,
               now: datetime | None = None) -> FleetRiskResponse:
    """The ranked page of every registered asset of the served types (or of one): one page
    of ranked_fleet."""
    ranked, out_of_service = ranked_fleet(request.asset_type, request.horizon, lanes=lanes,
                                          assets=assets, criticality=criticality,
                                          failed_at=failed_at, now=now)
    first = (request.page - 1) * request.page_size
    page = ranked[first:first + request.page_size]
    return FleetRiskResponse(
        total=len(ranked), out_of_service=out_of_service, page=request.page,
        page_size=request.page_size,
        items=[RiskItem(rank=first + k + 1, **r) for k, r in enumerate(page)])


def ranked_fleet(asset_type: str | None, horizon: float | None, *, lanes: dict[str, Lane],
                 assets, criticality: dict[str, float],
                 failed_at: dict[str, float] | None = None,
                 now: datetime | None = None) -> tuple[list[dict], int]:
    """(every in-service asset of the served types, or of `asset_type`, ranked, as RiskItem
    fields without the rank; the count left out as out of service).

    `assets`: the asset registry frame; `criticality`: {asset_id: weight} (1 if absent);
    `failed_at`: {asset_id: epoch seconds of its last recorded failure}. An asset that
    failed and has not reported since is out of service (a failed run-to-failure unit, a
    pump awaiting its replacement): it is left out of the ranking and counted. `horizon`:
    None = each type's. Raises KeyError(asset type) when that type has no served model.
    """
    failed_at = failed_at or {}
    out_of_service = 0
    now = now or datetime.now(UTC)
    kinds = [asset_type] if asset_type else sorted(lanes)
    rows: list[dict] = []
    for kind in kinds:
        lane = lanes[kind]  # KeyError: the caller answers 4xx naming asset_type
        horizon_of_kind = horizon or lane.horizon
        ids = sorted(assets.loc[assets["asset_type"].astype(str) == kind, "asset_id"]
                     .astype(str))
        scored = score_lane(lane, ids, horizon_of_kind, now)
        out = scored.outputs
        for i, asset in enumerate(ids):
            read_at = now.timestamp() - scored.feature_age_s[i]  # NaN without features
            if asset in failed_at and not read_at > failed_at[asset]:
                out_of_service += 1
                continue
            crit = float(criticality.get(asset, 1.0))
            ok = bool(scored.found[i]) and np.isfinite(out["rul"][i])
            value = {k: _maybe(out[k][i]) if ok else None
                     for k in ("p_fail", "rul", "rul_lower", "rul_upper")}
            rows.append({
                "asset_id": asset, "asset_type": kind, "rul_unit": lane.rul_unit,
                "horizon": horizon_of_kind, "risk": value["p_fail"] * crit if ok else None,
                "criticality": crit,
                "last_reading_age_s": _maybe(scored.feature_age_s[i]) if ok else None,
                "data_quality": ("no_features" if not ok else
                                 "stale" if scored.stale[i] else "ok"), **value})
    return rank_fleet(rows), out_of_service


def _date(start_s: float, later: float | None, seconds_per_unit: float | None) -> str | None:
    if later is None or seconds_per_unit is None or not np.isfinite(start_s):
        return None
    return (datetime.fromtimestamp(start_s, UTC)
            + timedelta(seconds=later * seconds_per_unit)).isoformat()


def recommend_assets(request: RecommendRequest, *, lanes: dict[str, Lane], type_of,
                     profiles: dict, now: datetime | None = None) -> RecommendResponse:
    """A Recommendation (or a per-item error) for every asked asset, in request order.

    `type_of(ids)` -> {id: type}; `profiles`: {asset_id: MaintenanceProfile}.
    """
    now = now or datetime.now(UTC)
    asked = list(dict.fromkeys(request.asset_ids))
    kinds = type_of(asked)
    answers: dict[str, Recommendation | PredictionError] = {}
    for kind in sorted(set(kinds.values())):
        ids = [a for a in asked if kinds.get(a) == kind]
        lane = lanes.get(kind)
        if lane is None:
            answers.update(unserved(kind, ids))
            continue
        horizon = request.horizon or lane.horizon
        model = lane.holder.current
        scored = score_lane(lane, ids, horizon, now)
        calibration = getattr(model.predictor, "calibration", None)
        rul_known = np.nan_to_num(scored.outputs["rul"], nan=0.0)
        draws = calibration.samples(rul_known) if calibration is not None else None
        for i, asset in enumerate(ids):
            profile = profiles.get(asset)
            rul = scored.outputs["rul"][i]
            if not scored.found[i]:
                answers[asset] = PredictionError(asset_id=asset, error=UNKNOWN_ASSET)
            elif not np.isfinite(rul):
                answers[asset] = PredictionError(asset_id=asset, error=NOT_FINITE)
            elif calibration is None:
                answers[asset] = PredictionError(
                    asset_id=asset, error="the served model has no predictive distribution")
            elif profile is None or not profile.priced:
                answers[asset] = PredictionError(asset_id=asset, error=(
                    f"no maintenance costs for {asset!r}: declare failure_cost and "
                    f"planned_cost in asset type {kind!r} (maintenance:) or import them "
                    "(twinops assets import)"))
            else:
                plan = recommend(draws[i], float(scored.age[i]), profile, horizon, lane.rul_unit,
                                 stale=bool(scored.stale[i]))
                start = now.timestamp() - float(scored.feature_age_s[i])
                answers[asset] = Recommendation(
                    **asdict(plan), asset_id=asset, asset_type=kind, rul_unit=lane.rul_unit,
                    due_date=_date(start, plan.due_in, lane.seconds_per_unit),
                    latest_safe_date=_date(start, plan.latest_safe_in, lane.seconds_per_unit),
                    rul=float(rul), rul_lower=float(scored.outputs["rul_lower"][i]),
                    rul_upper=float(scored.outputs["rul_upper"][i]),
                    model_name=model.name, model_version=model.version)
    return RecommendResponse(recommendations=[
        answers.get(a) or PredictionError(asset_id=a, error=UNREGISTERED_ASSET)
        for a in request.asset_ids])


def local_lanes(settings, types=None) -> dict:
    """A Lane (serving.predict) per type with a champion (of `types`, default every declared
    one), without a server: the champion loaded once (no hot swap), its online reader."""
    from types import SimpleNamespace

    from features.online import make_online_reader
    from features.store import get_store
    from pipelines.approvals import load_champion
    from serving.predict import ServedModel, make_lane
    from training.registry import get_alias_version

    store = get_store(settings)
    lanes = {}
    for name in sorted(types or settings.declared_types()):
        typed = settings.for_type(name)
        if get_alias_version(typed, "champion") is None:
            continue
        model = ServedModel.from_loaded(load_champion(typed), alias="champion")
        lanes[name] = make_lane(typed, SimpleNamespace(current=model),
                                make_online_reader(typed, store))
    return lanes
