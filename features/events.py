"""Ground-truth feedback: validate failure / maintenance events, quarantine bad ones, store.

    `twinops feedback` ─┐
    POST /feedback ─────┼─► record_events(settings, events_df)
    (any caller)        ┘        │ validate_events: columns, asset_id, timestamp (UTC),
                                 │   cycle (positive int), event ∈ {failure, maintenance},
                                 │   optional: asset must have stored readings,
                                 │   cycle and timestamp agree with the stored readings
                                 ├─► rejected rows + reason ─► data/quarantine/ (write_quarantine)
                                 └─► accepted rows ─► datastore.append_events (idempotent)
                                          │
                                          ▼
              training labels (features.labels) and realized RUL errors (monitoring.performance)

Why a separate path from the readings ingest: feedback arrives one event at a
time from people and maintenance systems, long after the readings, and a
wrong event is worse than a wrong reading — a mistyped failure cycle turns
every earlier reading of that asset into a false RUL label and every past
prediction into a false error. So each event is checked on its own and a bad
one is rejected with a reason (and quarantined, like bad readings), never
silently dropped or stored. The checks reuse the readings validation's
parsers (`features.validation`) so "a UTC timestamp" and "a positive integer
cycle" mean the same thing everywhere.

An event for an asset with no stored readings is rejected by default: it can
label nothing and is most often a typo in the asset id. Callers that know
better (importing history before readings) pass `require_known_asset=False`.

Cycle and timestamp must not contradict the asset's stored readings: an event at cycle c
happened after the stored reading of the nearest cycle below c and before that of the
nearest cycle above c, so its timestamp lies between those two readings' (a bound is
absent where no such reading is stored: an event after the last reading, before the
first). A failure "at cycle 50" stamped before cycle 40 was read names two different
moments; which one is the typo cannot be told, and the labels differ by ten cycles
either way, so it is rejected naming both. It is the rule `/feedback` fills a missing one
of the two by (serving.ingest._locate), so giving both never means something else than
giving either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.contract import (
    ASSET_ID,
    CYCLE,
    EVENT,
    EVENT_COLUMNS,
    EVENT_KINDS,
    QUARANTINE_REASON,
    TIMESTAMP,
)
from features.settings import Settings


@dataclass
class EventsResult:
    """What happened to a batch of events."""

    #: Valid events in the batch (stored now or already stored before).
    accepted: int
    #: Of the accepted, how many were new (the rest were already stored: idempotent).
    appended: int
    #: One entry per rejected input row: {"row": position, "reason": ..., <input fields>}.
    rejected: list[dict[str, Any]] = field(default_factory=list)
    quarantine_file: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "appended": self.appended,
            "rejected": self.rejected,
            "quarantine_file": self.quarantine_file,
        }


def _empty_valid() -> pd.DataFrame:
    return pd.DataFrame(
        {
            ASSET_ID: pd.Series(dtype="string"),
            TIMESTAMP: pd.Series(dtype="datetime64[ns, UTC]"),
            CYCLE: pd.Series(dtype="int64"),
            EVENT: pd.Series(dtype="string"),
        }
    )


def validate_events(
    events: pd.DataFrame, known_assets: set[str] | None = None,
    readings: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split events into (valid typed frame, rejected rows + `quarantine_reason`).

    Invariant: len(valid) + len(rejected) == len(events). Event names are
    normalised (stripped, lower-cased) before the check; anything else is
    taken as given. `readings` (asset_id, cycle, timestamp of stored readings): an event
    whose timestamp contradicts its cycle there is rejected (module docstring).
    """
    from features.validation import _numeric, _timestamps

    original = events.reset_index(drop=True)
    missing = [c for c in EVENT_COLUMNS if c not in original.columns]
    if missing:
        rejected = original.copy()
        rejected[QUARANTINE_REASON] = f"missing column(s): {', '.join(missing)}"
        return _empty_valid(), rejected

    n = len(original)
    reasons: list[list[str]] = [[] for _ in range(n)]

    def add(mask: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(mask):
            reasons[i].append(reason)

    asset = original[ASSET_ID].astype("string").str.strip()
    bad_asset = asset.isna().to_numpy() | (asset.fillna("") == "").to_numpy()
    add(bad_asset, "missing asset_id")
    if known_assets is not None:
        add(~bad_asset & ~asset.fillna("").isin(known_assets).to_numpy(),
            "unknown asset_id (no readings stored for it)")

    ts = _timestamps(original[TIMESTAMP])
    add(np.asarray(ts.isna()), "unparsable or missing timestamp")

    cycle, _ = _numeric(original[CYCLE])
    with np.errstate(invalid="ignore"):
        add(~np.isfinite(cycle) | (cycle != np.round(cycle)) | (cycle < 1),
            "cycle is not a positive integer")

    kind = original[EVENT].astype("string").str.strip().str.lower()
    add(~kind.isin(EVENT_KINDS).fillna(False).to_numpy(),
        f"event must be one of {', '.join(EVENT_KINDS)}")

    if readings is not None and len(readings):
        checkable = np.array([not r for r in reasons], dtype=bool)
        for i, reason in _contradictions(asset, ts, cycle, checkable, readings):
            reasons[i].append(reason)

    bad = np.array([bool(r) for r in reasons], dtype=bool)
    rejected = original[bad].copy()
    rejected[QUARANTINE_REASON] = ["; ".join(r) for r, b in zip(reasons, bad, strict=True) if b]
    good = ~bad
    valid = pd.DataFrame(
        {
            ASSET_ID: asset[good].to_numpy(),
            TIMESTAMP: ts[good],
            CYCLE: cycle[good].astype("int64"),
            EVENT: kind[good].to_numpy(),
        }
    ).astype({ASSET_ID: "string", EVENT: "string", TIMESTAMP: "datetime64[ns, UTC]"})
    return valid.reset_index(drop=True), rejected


def _contradictions(asset: pd.Series, ts: pd.DatetimeIndex, cycle: np.ndarray,
                    rows: np.ndarray, readings: pd.DataFrame) -> list[tuple[int, str]]:
    """(row, reason) for each of `rows` whose timestamp is before the stored reading of the
    nearest cycle below its cycle, or after that of the nearest cycle above."""
    index = np.flatnonzero(rows)
    if not len(index):
        return []
    asked = pd.DataFrame({"row": index, ASSET_ID: asset.iloc[index].astype(str).to_numpy(),
                          CYCLE: cycle[index].astype("int64"),
                          TIMESTAMP: ts[index]}).sort_values(CYCLE)
    stored = pd.DataFrame({ASSET_ID: readings[ASSET_ID].astype(str).to_numpy(),
                           "at": readings[CYCLE].astype("int64").to_numpy(),
                           "read": pd.to_datetime(readings[TIMESTAMP], utc=True)}
                          ).sort_values("at")
    near = {side: pd.merge_asof(asked, stored, left_on=CYCLE, right_on="at", by=ASSET_ID,
                                direction=side, allow_exact_matches=False).set_index("row")
            for side in ("backward", "forward")}  # nearest stored cycle strictly below, above
    found = []
    for i in index:
        t, c = ts[i], int(cycle[i])
        below, above = near["backward"].loc[i], near["forward"].loc[i]
        for side, ref in (("before", below), ("after", above)):
            if pd.notna(ref["read"]) and (t < ref["read"] if side == "before"
                                          else t > ref["read"]):
                found.append((i, f"timestamp {t.isoformat()} contradicts cycle {c}: it is "
                                 f"{side} the stored reading of cycle {int(ref['at'])} "
                                 f"({pd.Timestamp(ref['read']).isoformat()})"))
    return found


def stored_readings(settings: Settings, asset_ids) -> pd.DataFrame:
    """asset_id, cycle, timestamp of the stored readings of these assets (settings' type;
    a filtered read of three columns)."""
    from features.datastore import READINGS_FILE

    path = settings.raw_dir / READINGS_FILE
    ids = sorted({str(a) for a in asset_ids})
    if not path.exists() or not ids:
        return pd.DataFrame({ASSET_ID: pd.Series(dtype="string"),
                             CYCLE: pd.Series(dtype="int64"),
                             TIMESTAMP: pd.Series(dtype="datetime64[ns, UTC]")})
    return pd.read_parquet(path, columns=[ASSET_ID, CYCLE, TIMESTAMP],
                           filters=[(ASSET_ID, "in", ids)])


def reading_time(settings: Settings, asset_id: str, cycle: int) -> pd.Timestamp | None:
    """When the stored reading of (asset, cycle) was taken (the asset's registered type,
    else settings'), None if there is none: the timestamp of an event given by its cycle."""
    from features.datastore import asset_types_of

    kind = asset_types_of(settings, [asset_id]).get(str(asset_id), settings.asset_type)
    readings = stored_readings(settings.for_type(kind), [asset_id])
    hit = readings[readings[CYCLE] == int(cycle)]
    return pd.Timestamp(hit[TIMESTAMP].iloc[0]) if len(hit) else None


def _rejected_records(rejected: pd.DataFrame) -> list[dict[str, Any]]:
    records = []
    for pos, row in rejected.iterrows():
        fields = {
            str(k): (None if pd.isna(v) else str(v))
            for k, v in row.items()
            if k != QUARANTINE_REASON
        }
        records.append({"row": int(pos), "reason": row[QUARANTINE_REASON], **fields})
    return records


def record_events(
    settings: Settings,
    events: pd.DataFrame,
    *,
    require_known_asset: bool = True,
    source: str = "feedback",
) -> EventsResult:
    """Validate events, quarantine the bad ones with reasons, append the good ones.

    Returns the accepted / appended counts and one record per rejected row
    (input position + reason + the fields as given), so an HTTP handler can
    answer 4xx-with-reasons or 200 without re-validating anything.
    Events are stored with their asset's type (the asset registry says which; an asset
    not registered counts as settings' type), so one batch may mix types.
    """
    from features.datastore import append_events, asset_types_of, write_lock
    from features.validation import write_quarantine

    events = events.reset_index(drop=True)
    with write_lock(settings):
        ids = events[ASSET_ID] if ASSET_ID in events.columns else pd.Series([], dtype=str)
        registered = asset_types_of(settings, ids.dropna().astype(str).unique())
        kind = ids.map(lambda a: registered.get(str(a), settings.asset_type)).to_numpy()
        if len(events) == 0 or (kind == settings.asset_type).all():
            return _record(settings, events, require_known_asset, source, append_events,
                           write_quarantine)
        results = []
        for name in sorted(set(kind)):
            rows = np.flatnonzero(kind == name)
            part = _record(settings.for_type(name), events.iloc[rows].reset_index(drop=True),
                           require_known_asset, source, append_events, write_quarantine)
            for r in part.rejected:  # back to the caller's row positions
                r["row"] = int(rows[r["row"]])
            results.append(part)
        return EventsResult(
            accepted=sum(r.accepted for r in results),
            appended=sum(r.appended for r in results),
            rejected=sorted((x for r in results for x in r.rejected), key=lambda x: x["row"]),
            quarantine_file=next((r.quarantine_file for r in results if r.quarantine_file), None),
        )


def _record(settings, events, require_known_asset, source, append_events, write_quarantine):
    ids = events[ASSET_ID].dropna().astype(str).str.strip() if ASSET_ID in events else []
    readings = stored_readings(settings, ids)
    known = set(readings[ASSET_ID].astype(str).unique()) if require_known_asset else None
    valid, rejected = validate_events(events, known, readings)
    quarantine_file = None
    if len(rejected):
        quarantine_file = str(write_quarantine(rejected, settings, source=source))
    appended = append_events(settings, valid) if len(valid) else 0
    return EventsResult(
        accepted=len(valid),
        appended=int(appended),
        rejected=_rejected_records(rejected),
        quarantine_file=quarantine_file,
    )
