"""POST /ingest and POST /feedback: new readings and events into the data contract's stores.

    readings ─► by asset type (the row's `asset_type`, else the asset registry's, else the
                service's default type), then per type:
             ─► validate_readings ─┬─ rejected rows ─► quarantine file + answer (index, reason)
                                   ▼
               [ingest lock] datastore.append_readings (raw parquet, atomic) ─► conflicts rejected
                            │  the asset's first and last readings (transforms.feature_history),
                            │  from the raw store
                                   ▼
               latest_window_features ─► features.store.push_features ─► Feast online (PushSource)
                                                                       + offline parquet append
    events ─► resolve cycle <-> timestamp from the asset's readings ─► [ingest lock]
              datastore.append_events (events table)

The readings features need come from the raw store, not from a separate buffer: the
raw store is already the durable source of truth, written under the same lock a
moment before; a second "recent readings" copy would have to be kept in step
with it (and with batch ingests that bypass the service) and could diverge.
The cost is a filtered parquet read per ingest (pyarrow filter on asset_id),
small next to append_readings' own rewrite of the file.

Ordering for "accepted rows are never lost": readings are committed to the
raw store first; only then are features pushed. If the push fails, the rows
are stored and the answer is a 503 saying so; retrying is safe (identical
rows count as already stored, and their features are pushed again).

The lock: an exclusive flock on <data_dir>/raw/.ingest.lock, because
append_readings / append_events are read-modify-write of one parquet file and
two workers (or the batch `twinops ingest`, if it takes the same lock) writing
at once would lose one side's rows.

Versioning (DVC): /ingest and /feedback do not `dvc add` data/. A version per request
would hash data/ and push it under this lock, seconds in which every other request
waits, for versions nobody asked for. Rows stored here are versioned by whoever uses
them next: training versions data/ itself and reads its frame under this same lock
(pipelines.flows.train_flow, features.versioning.version_and_read), so a model's
dvc_data_hash always holds the rows this endpoint stored before it; `twinops ingest`
versions data/ after its own append. To pin the data at a moment without training, call
features.versioning.track_data, which takes the same lock (a bare `dvc add data` does
not, and may version a state between two writes of one request).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from features.datastore import write_lock
from serving.errors import ApiError
from serving.schemas import FeedbackResponse, IngestResponse, RejectedRow

if TYPE_CHECKING:  # pragma: no cover
    from features.settings import Settings

INDEX = "__request_index"


def feature_readings(settings: Settings, asset_ids: Sequence[str]) -> pd.DataFrame:
    """The stored readings the newest features of each asset depend on (raw store, filtered
    read): its first and last ones, `features.transforms.feature_history`."""
    from features.contract import ASSET_ID
    from features.datastore import READINGS_FILE
    from features.transforms import feature_history

    path = Path(settings.raw_dir) / READINGS_FILE
    frame = pd.read_parquet(path, filters=[(ASSET_ID, "in", list(asset_ids))])
    return feature_history(frame, settings.type, asset_events(settings, asset_ids))


def asset_events(settings: Settings, asset_ids: Sequence[str]) -> pd.DataFrame:
    """The stored events of these assets (their maintenances start new lives)."""
    from features.contract import ASSET_ID
    from features.datastore import load_events

    events = load_events(settings)
    return events[events[ASSET_ID].astype(str).isin(set(map(str, asset_ids)))] if len(
        events) else events


def _request_index(rows: pd.DataFrame, checked: pd.DataFrame,
                   quarantined: pd.DataFrame) -> pd.DataFrame:
    """`rows` (valid readings) with the request position of the row each came from, found
    by (asset_id, cycle) among the rows validation kept."""
    from features.contract import ASSET_ID, CYCLE

    keys = checked.assign(**{ASSET_ID: checked[ASSET_ID].astype("string")})
    if CYCLE in keys:
        keys[CYCLE] = pd.to_numeric(keys[CYCLE], errors="coerce")
        keys = keys[[ASSET_ID, CYCLE, INDEX]].dropna(subset=[CYCLE])
        keys = keys[~keys[INDEX].isin(quarantined[INDEX])].astype({CYCLE: "int64"})
        return rows.merge(keys, on=[ASSET_ID, CYCLE], how="left")
    # a timestamp type without cycles in the request: the cycle was derived, match by asset
    first = keys[~keys[INDEX].isin(quarantined[INDEX])].drop_duplicates(ASSET_ID)
    return rows.merge(first[[ASSET_ID, INDEX]], on=ASSET_ID, how="left")


def _rejected(frame: pd.DataFrame, reason_col: str) -> list[RejectedRow]:
    from features.contract import ASSET_ID

    return [
        RejectedRow(index=int(row[INDEX]), reason=str(row[reason_col]),
                    asset_id=None if pd.isna(row.get(ASSET_ID)) else str(row[ASSET_ID]))
        for _, row in frame.iterrows()
    ]


def _types_of_rows(settings: Settings, readings: Sequence[dict[str, Any]]) -> list[str]:
    """The asset type of each row: its own `asset_type`, else the registry's, else the
    settings' type."""
    from features.contract import ASSET_ID, ASSET_TYPE
    from features.datastore import asset_types_of

    registered = asset_types_of(settings, {str(r.get(ASSET_ID)) for r in readings})
    return [str(r.get(ASSET_TYPE) or registered.get(str(r.get(ASSET_ID)))
                or settings.asset_type) for r in readings]


def ingest_readings(settings: Settings, readings: Sequence[dict[str, Any]], *,
                    push=None) -> IngestResponse:
    """Validate, store, push features, per asset type (a request may mix types).
    `push(settings, features_df)` defaults to Feast's."""
    from features.contract import ASSET_TYPE

    kinds = _types_of_rows(settings, readings)
    declared = settings.declared_types()
    bad = [i for i, k in enumerate(kinds) if k not in declared]
    if bad:
        raise ApiError(400, f"unknown asset_type {kinds[bad[0]]!r} (declared: "
                            f"{', '.join(sorted(declared))})",
                       [{"loc": ["readings", i, ASSET_TYPE], "msg": "unknown asset type"}
                        for i in bad])
    parts = []
    for kind in sorted(set(kinds)):
        index = [i for i, k in enumerate(kinds) if k == kind]
        rows = [{k: v for k, v in readings[i].items() if k != ASSET_TYPE} for i in index]
        try:
            part = _ingest_type(settings.for_type(kind), rows, push)
        except ApiError as exc:
            if len(set(kinds)) == 1:
                raise
            exc.detail = [{**d, "loc": ["readings", index[d["loc"][1]], *d["loc"][2:]]}
                          if len(d.get("loc", [])) > 1 and isinstance(d["loc"][1], int) else d
                          for d in exc.detail or []]
            if exc.status == 422:  # every row of this type rejected; others may be stored
                parts.append((index, IngestResponse(
                    accepted=0, appended=0, already_stored=0, features_pushed=[],
                    rejected=[RejectedRow(index=d["loc"][1], asset_id=None, reason=d["msg"])
                              for d in exc.detail])))
                continue
            raise
        for r in part.rejected:
            r.index = index[r.index]
        parts.append((index, part))
    accepted = sum(p.accepted for _, p in parts)
    rejected = sorted((r for _, p in parts for r in p.rejected), key=lambda r: r.index)
    if not accepted:
        raise ApiError(422, f"all {len(readings)} reading(s) rejected; nothing stored",
                       [{"loc": ["readings", r.index], "msg": r.reason} for r in rejected])
    return IngestResponse(accepted=accepted, appended=sum(p.appended for _, p in parts),
                          already_stored=sum(p.already_stored for _, p in parts),
                          rejected=rejected,
                          features_pushed=sorted(a for _, p in parts for a in p.features_pushed),
                          unknown_regime=sum(p.unknown_regime for _, p in parts))


def _ingest_type(settings: Settings, readings: Sequence[dict[str, Any]], push) -> IngestResponse:
    """One asset type's rows: validate, store, register, push features."""
    from features import datastore
    from features.contract import ASSET_ID, CYCLE, QUARANTINE_REASON
    from features.store import push_features
    from features.transforms import latest_window_features
    from features.validation import json_row_problems, validate_readings, write_quarantine

    push = push or push_features
    asset_type = settings.type
    columns = asset_type.reading_columns
    if asset_type.time_index == "timestamp" and not any(CYCLE in r for r in readings):
        columns = [c for c in columns if c != CYCLE]
    known = set(columns)
    problems = [([f"unknown field(s): {', '.join(sorted(set(r) - known))}"]
                 if set(r) - known else []) + json_row_problems(r, asset_type)
                for r in readings]
    # a rejected row is quarantined as sent: its fields as text, not coerced
    raw = pd.DataFrame([{k: (str(v) if p and v is not None else v) for k, v in r.items()
                         if k in known} for r, p in zip(readings, problems, strict=True)],
                       columns=columns)
    raw[INDEX] = range(len(raw))
    extra = raw[[bool(p) for p in problems]].assign(**{QUARANTINE_REASON: [
        "; ".join(p) for p in problems if p]})
    checked = raw[[not p for p in problems]]
    with write_lock(settings):
        result = validate_readings(checked.drop(columns=INDEX).reset_index(drop=True),
                                   asset_type, life_starts=datastore.life_starts(settings))
        quarantined = result.quarantined.assign(
            **{INDEX: checked[INDEX].to_numpy()[result.quarantined.index]})
        if len(extra):
            quarantined = pd.concat([quarantined, extra], ignore_index=True)
        other = datastore.register_assets(settings, result.valid)
        appended, same, conflicts = datastore.append_readings(settings, result.valid[~other])
        refused = [(conflicts, "conflicts with the stored reading of this (asset_id, cycle)"),
                   (result.valid[other], "asset_id is registered as another asset type")]
        for rows, reason in refused:
            if len(rows):
                rows = _request_index(rows, checked, quarantined)
                quarantined = pd.concat([quarantined, rows.assign(**{QUARANTINE_REASON: reason})],
                                        ignore_index=True)
        conflicts = pd.concat([conflicts, result.valid[other]], ignore_index=True)
        if len(quarantined):
            write_quarantine(quarantined.drop(columns=INDEX), settings, source="api:/ingest")
        stored_assets = sorted(set(result.valid[ASSET_ID]) - set(conflicts[ASSET_ID])
                               if len(conflicts) else set(result.valid[ASSET_ID]))
        stored_assets = [str(a) for a in stored_assets]
        history = feature_readings(settings, stored_assets) if stored_assets else None
        events = asset_events(settings, stored_assets) if stored_assets else None
    rejected = sorted(_rejected(quarantined, QUARANTINE_REASON), key=lambda r: r.index)
    accepted = appended + same
    if not accepted:
        raise ApiError(422, f"all {len(readings)} reading(s) rejected; nothing stored",
                          [{"loc": ["readings", r.index], "msg": r.reason} for r in rejected])
    if history is not None and len(history):
        features = latest_window_features(history, settings.type, events)
        try:
            push(settings, features)
        except Exception as exc:
            raise ApiError(503, f"{accepted} reading(s) stored, but their features were not "
                                   f"pushed ({type(exc).__name__}: {exc}); retrying is safe"
                              ) from exc
    return IngestResponse(accepted=accepted, appended=appended, already_stored=same,
                          rejected=rejected, features_pushed=stored_assets,
                          unknown_regime=result.unknown_regime)


def record_events(settings: Settings, events: Sequence[dict[str, Any]]) -> FeedbackResponse:
    """Locate each event on its asset's readings, then validate and store through the data layer.

    The endpoint's own job is the convenience of giving either `cycle` or
    `timestamp`; validation, quarantine and the append are
    features.events.record_events (the same path as `twinops feedback`). If no
    event is accepted the answer is 422 with every reason.
    """
    from features import datastore
    from features.contract import ASSET_ID, CYCLE, EVENT_COLUMNS
    from features.events import record_events as store_events

    with write_lock(settings):
        kinds = set(datastore.asset_types_of(settings, {str(e[ASSET_ID]) for e in events})
                    .values()) or {settings.asset_type}
        by_asset = {}
        for kind in sorted(kinds):  # each asset's readings are stored with its type
            readings = datastore.load_readings(settings.for_type(kind))
            if len(readings):
                by_asset.update({a: g.sort_values(CYCLE) for a, g in readings.groupby(ASSET_ID)})
        rows, problems = [], []
        for i, ev in enumerate(events):
            located, problem = _locate(ev, by_asset.get(ev[ASSET_ID]))
            if problem:
                problems.append({"loc": ["events", i], "msg": problem})
            else:
                rows.append((i, located))
        result = (store_events(settings, pd.DataFrame([r for _, r in rows], columns=EVENT_COLUMNS),
                               source="api:/feedback") if rows else None)
    if result is not None:
        problems += [{"loc": ["events", rows[r["row"]][0]], "msg": r["reason"]}
                     for r in result.rejected]
    if result is None or not result.accepted:
        raise ApiError(422, f"{len(problems)} event(s) rejected; nothing stored", problems)
    return FeedbackResponse(appended=result.appended, received=len(events),
                            rejected=sorted(problems, key=lambda p: p["loc"][1]))


def _locate(ev: dict[str, Any], history: pd.DataFrame | None) -> tuple[dict, str | None]:
    """Fill the missing one of cycle / timestamp from the asset's readings."""
    from features.contract import CYCLE, TIMESTAMP

    if history is None or not len(history):
        return {}, f"unknown asset_id {ev['asset_id']!r}: no readings stored"
    cycle, ts = ev.get(CYCLE), ev.get(TIMESTAMP)
    if cycle is not None and ts is None:
        match = history[history[CYCLE] == cycle]
        if not len(match):
            return {}, (f"cycle {cycle} has no stored reading (asset's cycles "
                        f"{int(history[CYCLE].min())}..{int(history[CYCLE].max())}); "
                        "give `timestamp` too")
        ts = match[TIMESTAMP].iloc[0]
    elif ts is not None and cycle is None:
        before = history[history[TIMESTAMP] <= pd.Timestamp(ts)]
        if not len(before):
            return {}, "timestamp is before the asset's first reading; give `cycle` too"
        cycle = int(before[CYCLE].iloc[-1])
    return {**ev, CYCLE: int(cycle), TIMESTAMP: pd.Timestamp(ts)}, None
