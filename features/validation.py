"""Validate readings of one asset type; quarantine every rejected row with a reason.

    raw readings ─► column check ─► per-row checks (types, NaN, inf, range, unknown asset)
                                 ─► per-asset checks on rows that passed (duplicates,
                                     out-of-order cycles/timestamps)
                 ─► ValidationResult(valid  : typed contract frame, sorted by asset, time
                                     quarantined: original columns + quarantine_reason
                                     counts : input/valid/quarantined + per-check counts)
    write_quarantine(result, settings) ─► <data_dir>/quarantine/quarantine-<utc>-<id>.parquet
                                          + counts.jsonl ledger (both via features.atomic)

Invariant: len(valid) + len(quarantined) == len(input). Nothing is dropped
silently, because a sensor pipeline that loses rows quietly makes RUL labels and
drift statistics lie without anybody noticing.

Rules and why:
- naive timestamps are read as UTC (the contract is UTC; refusing them would
  quarantine most CSV exports), unparsable ones are rejected, and so is one later than
  this machine's clock plus MAX_CLOCK_SKEW (not measured yet: a wrong gateway clock);
- cycle must be a positive integer: it is the age axis of the window transform;
- the columns, units' valid ranges and optional sensors are the asset type's
  (features.asset_types); a value outside its declared range is rejected (a sentinel
  such as -999 or a unit mix-up, not wear);
- NaN/inf in a setting or a required sensor is rejected, not imputed: imputation is a
  modelling decision, not an ingestion one. A declared-optional sensor may be NaN: the
  row is kept and counted (`missing_optional`), and the window transform applies the
  type's missing-value policy;
- a reading in an operating regime the type has no fitted levels for (features.regimes) is
  kept and counted (`unknown_regime`): the reading is sound, the declaration is behind;
- a `timestamp`-indexed type may omit `cycle`: it is then the reading's age in sampling
  periods, round((timestamp - life start) / period) + 1, the life start being the
  asset's first stored reading (`life_starts`) or its first in the batch;
- duplicates of (asset_id, cycle) or (asset_id, timestamp): first one (in time,
  then input order) is kept, later copies are quarantined — re-sent batches are
  the common cause;
- out of order: in timestamp order, a cycle lower than one already seen for the
  asset is rejected (clock or counter went backwards). The later-in-time row is
  the one blamed; a single wild typo in an early row can therefore reject many
  later rows, which is loud rather than silent — intended.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features import atomic
from features.contract import ASSET_ID, CYCLE, QUARANTINE_REASON, TIMESTAMP

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Mapping

    from features.asset_types import AssetType

#: Keys of ValidationResult.counts besides input/valid/quarantined.
CHECKS = (
    "missing_columns",
    "bad_asset_id",
    "bad_timestamp",
    "future_timestamp",
    "bad_cycle",
    "unparsable",
    "missing_value",
    "non_finite",
    "out_of_range",
    "unknown_asset",
    "duplicate",
    "out_of_order",
)


#: How far ahead of this machine's clock a reading's timestamp may be (clock skew between
#: a sensor gateway and the platform). A reading from later than that cannot have been
#: measured yet: stored, it would make its asset look fresh to serving's staleness check
#: until that time and sort after every real reading of the asset.
MAX_CLOCK_SKEW = pd.Timedelta(minutes=10)

#: Largest cycle a JSON reading may carry: beyond it int64 arithmetic downstream overflows
#: (2**63 was stored as -2**63), and no asset lives two billion cycles.
MAX_CYCLE = 2**31 - 1
#: Largest magnitude of a JSON measurement: far beyond any physical reading, and small
#: enough that the window transform's sums and squares stay finite (1e308 overflowed).
MAX_MAGNITUDE = 1e12
MAX_ID_LENGTH = 256


def json_row_problems(row: Mapping, asset_type: AssetType) -> list[str]:
    """What is wrong with one JSON reading (the API's rows) before pandas coerces it: a
    problem per field, naming it. JSON carries types, so they are checked as sent: a boolean
    or a string is not a number, an epoch integer or a naive time is not a timestamp, and an
    id is a string without control characters. Files (CSV) carry no types and go through
    validate_readings' parsing alone (naive times read as UTC there: see the module doc)."""
    problems = []
    asset = row.get(ASSET_ID)
    if not isinstance(asset, str):
        problems.append(f"{ASSET_ID}: must be a string, got {type(asset).__name__}")
    elif not 1 <= len(asset) <= MAX_ID_LENGTH:
        problems.append(f"{ASSET_ID}: must be 1 to {MAX_ID_LENGTH} characters, got "
                        f"{len(asset)}")
    elif any(ord(ch) < 32 or ord(ch) == 127 for ch in asset):
        problems.append(f"{ASSET_ID}: must not contain control characters")
    if CYCLE in row and row[CYCLE] is not None:
        cycle = row[CYCLE]
        if isinstance(cycle, bool) or not isinstance(cycle, int):
            problems.append(f"{CYCLE}: must be an integer, got {type(cycle).__name__}")
        elif not 1 <= cycle <= MAX_CYCLE:
            problems.append(f"{CYCLE}: must be in [1, {MAX_CYCLE}], got {cycle}")
    if TIMESTAMP in row and row[TIMESTAMP] is not None:
        stamp = row[TIMESTAMP]
        if not isinstance(stamp, str):
            problems.append(f"{TIMESTAMP}: must be an ISO 8601 string with a UTC offset "
                            f"(e.g. 2026-01-01T00:00:00+00:00), got {type(stamp).__name__}")
        else:
            try:
                parsed = datetime.fromisoformat(stamp)
            except ValueError:
                problems.append(f"{TIMESTAMP}: not an ISO 8601 time: {stamp[:40]!r}")
            else:
                if parsed.tzinfo is None:
                    problems.append(f"{TIMESTAMP}: has no UTC offset (add +00:00 or Z)")
    for column in asset_type.measurement_columns:
        value = row.get(column)
        if value is None or (isinstance(value, float) and value != value):
            continue  # missing (null, NaN): validate_readings decides (an optional sensor may)
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{column}: must be a number, got {type(value).__name__}")
        elif not abs(value) <= MAX_MAGNITUDE:
            problems.append(f"{column}: {value:g} is beyond ±{MAX_MAGNITUDE:g}")
    return problems


@dataclass
class ValidationResult:
    valid: pd.DataFrame
    quarantined: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    missing_columns: list[str] = field(default_factory=list)
    #: Missing (NaN) values of optional sensors in the valid rows, per sensor.
    missing_optional: dict[str, int] = field(default_factory=dict)
    #: Valid rows taken in an operating regime the type has no fitted levels for
    #: (features.regimes): kept, since nothing is wrong with the reading, but their sensors
    #: read as missing until the regimes are refitted, so they are counted out loud.
    unknown_regime: int = 0


class _Reasons:
    """Collects reasons per row position; joins them with '; ' at the end."""

    def __init__(self, n: int):
        self.n = n
        self._lists: list[list[str]] = [[] for _ in range(n)]
        self.counts = dict.fromkeys(CHECKS, 0)

    def add(self, mask: np.ndarray, check: str, reason: str | np.ndarray) -> None:
        idx = np.flatnonzero(mask)
        self.counts[check] += len(idx)
        if isinstance(reason, str):
            for i in idx:
                self._lists[i].append(reason)
        else:
            for i in idx:
                self._lists[i].append(reason[i])

    def bad(self) -> np.ndarray:
        return np.array([bool(r) for r in self._lists], dtype=bool)

    def joined(self) -> np.ndarray:
        return np.array(["; ".join(r) for r in self._lists], dtype=object)


def _numeric(col: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, unparsable mask): unparsable = present in input but not a number."""
    raw = col
    if isinstance(raw.dtype, pd.StringDtype) or raw.dtype == object:
        stripped = raw.astype("string").str.strip()
        raw = stripped.where(stripped != "", None)
    num = pd.to_numeric(raw, errors="coerce")
    values = num.astype("float64").to_numpy(na_value=np.nan)
    unparsable = values != values  # NaN after coercion ...
    unparsable &= ~pd.isna(raw).to_numpy()  # ... but something was there
    return values, unparsable


def _timestamps(col: pd.Series) -> np.ndarray:
    """Parse to UTC; naive values are taken as UTC; unparsable -> NaT."""
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        ts = col.dt.tz_convert(UTC)
    elif pd.api.types.is_datetime64_dtype(col.dtype):
        ts = col.dt.tz_localize(UTC)
    else:
        ts = pd.to_datetime(col, utc=True, errors="coerce", format="mixed")
    return pd.DatetimeIndex(ts).astype("datetime64[ns, UTC]")


def validate_readings(
    df: pd.DataFrame,
    asset_type: AssetType,
    known_assets: Iterable[str] | None = None,
    life_starts: Mapping[str, pd.Timestamp] | None = None,
) -> ValidationResult:
    """Split readings of `asset_type` into a typed valid frame and a quarantine with reasons."""
    n = len(df)
    original = df.reset_index(drop=True)
    derive_cycle = asset_type.time_index == "timestamp" and CYCLE not in original.columns
    required = [c for c in asset_type.reading_columns if not (derive_cycle and c == CYCLE)]
    missing = [c for c in required if c not in original.columns]
    if missing:
        # Without the type's columns no row can be trusted: all rows go to
        # quarantine, the reason names the columns.
        q = original.copy()
        q[QUARANTINE_REASON] = (f"missing column(s) of asset type {asset_type.name!r}: "
                                f"{', '.join(missing)}")
        counts = {"input": n, "valid": 0, "quarantined": n, **dict.fromkeys(CHECKS, 0)}
        counts["missing_columns"] = n
        empty = pd.DataFrame({c: pd.Series(dtype=t)
                              for c, t in asset_type.reading_dtypes.items()})
        return ValidationResult(empty, q, counts, missing)

    reasons = _Reasons(n)

    # ---- per-row checks -------------------------------------------------------
    asset = original[ASSET_ID].astype("string").str.strip()
    bad_asset = asset.isna().to_numpy() | (asset.fillna("") == "").to_numpy()
    reasons.add(bad_asset, "bad_asset_id", "missing asset_id")

    ts = _timestamps(original[TIMESTAMP])
    bad_ts = np.asarray(ts.isna())
    reasons.add(bad_ts, "bad_timestamp", "unparsable or missing timestamp")
    latest = pd.Timestamp.now(tz="UTC") + MAX_CLOCK_SKEW
    future = np.asarray(ts > latest) & ~bad_ts
    reasons.add(future, "future_timestamp",
                f"timestamp in the future (later than this clock + {MAX_CLOCK_SKEW})")

    if derive_cycle:
        cyc = _age_in_periods(asset, ts, asset_type.sampling_period_s, life_starts or {})
    else:
        cyc, _ = _numeric(original[CYCLE])
    with np.errstate(invalid="ignore"):
        bad_cycle = ~np.isfinite(cyc) | (cyc != np.round(cyc)) | (cyc < 1)
    reasons.add(bad_cycle, "bad_cycle", "cycle is not a positive integer")

    columns = asset_type.measurement_columns
    values = np.empty((n, len(columns)))
    unparsed = np.zeros((n, len(columns)), dtype=bool)
    for j, c in enumerate(columns):
        values[:, j], unparsed[:, j] = _numeric(original[c])
        reasons.add(unparsed[:, j], "unparsable", f"unparsable {c}")
    nan = np.isnan(values)
    inf = np.isinf(values)
    names = np.array(columns)
    optional = np.isin(names, asset_type.optional_sensors)
    # unparsable cells already have their reason; an optional sensor may be missing
    nan_only = nan & ~unparsed & ~optional[None, :]
    if nan_only.any():
        msg = np.array(
            ["NaN in " + ", ".join(names[row]) if row.any() else "" for row in nan_only],
            dtype=object,
        )
        reasons.add(nan_only.any(axis=1), "missing_value", msg)
    if inf.any():
        msg = np.array(
            ["inf in " + ", ".join(names[row]) if row.any() else "" for row in inf], dtype=object
        )
        reasons.add(inf.any(axis=1), "non_finite", msg)

    with np.errstate(invalid="ignore"):
        for j, ch in enumerate((*asset_type.settings, *asset_type.sensors)):
            v = np.where(np.isfinite(values[:, j]), values[:, j], np.nan)  # inf has its reason
            low = (v < ch.min) if ch.min is not None else np.zeros(n, dtype=bool)
            high = (v > ch.max) if ch.max is not None else np.zeros(n, dtype=bool)
            outside = low | high
            if outside.any():
                bounds = (f"[{'-inf' if ch.min is None else f'{ch.min:g}'}, "
                          f"{'inf' if ch.max is None else f'{ch.max:g}'}]")
                msg = np.full(n, "", dtype=object)  # formatted for the rejected rows only
                for i in np.flatnonzero(outside):
                    msg[i] = f"{ch.name}={v[i]:g} {ch.unit} outside {bounds}"
                reasons.add(outside, "out_of_range", msg)

    if known_assets is not None:
        known = set(map(str, known_assets))
        unknown = ~bad_asset & ~asset.fillna("").isin(known).to_numpy()
        reasons.add(unknown, "unknown_asset", "unknown asset_id")

    # ---- per-asset ordering checks, on rows that passed the row checks -----------
    ok = ~reasons.bad()
    pos = np.flatnonzero(ok)
    if len(pos):
        keyed = pd.DataFrame(
            {"a": asset.to_numpy()[pos], "t": ts[pos], "c": cyc[pos], "pos": pos}
        ).sort_values(["a", "t", "pos"], kind="mergesort")
        dup_c = keyed.duplicated(["a", "c"], keep="first").to_numpy()
        dup_t = keyed.duplicated(["a", "t"], keep="first").to_numpy() & ~dup_c
        p = keyed["pos"].to_numpy()
        reasons.add(_scatter(n, p[dup_c]), "duplicate", "duplicate (asset_id, cycle)")
        reasons.add(_scatter(n, p[dup_t]), "duplicate", "duplicate (asset_id, timestamp)")
        rest = keyed[~(dup_c | dup_t)]
        prev_max = rest.groupby("a", sort=False)["c"].cummax()
        prev_max = prev_max.groupby(rest["a"], sort=False).shift(1)
        ooo = (rest["c"] < prev_max).to_numpy()
        reasons.add(
            _scatter(n, rest["pos"].to_numpy()[ooo]),
            "out_of_order",
            "out-of-order cycle (lower than an earlier reading of this asset)",
        )

    bad = reasons.bad()
    quarantined = original[bad].copy()
    quarantined[QUARANTINE_REASON] = reasons.joined()[bad]

    good = ~bad
    valid = pd.DataFrame(
        {
            ASSET_ID: asset[good].astype("string").to_numpy(),
            TIMESTAMP: ts[good],
            CYCLE: cyc[good].astype("int64"),
        }
    )
    valid[columns] = values[good]
    valid = valid.astype(asset_type.reading_dtypes)
    valid = valid.sort_values([ASSET_ID, TIMESTAMP, CYCLE], kind="mergesort").reset_index(drop=True)
    counts = {"input": n, "valid": len(valid), "quarantined": int(bad.sum()), **reasons.counts}
    gaps = {c: int(valid[c].isna().sum()) for c in asset_type.optional_sensors}
    return ValidationResult(valid, quarantined, counts, [], {c: k for c, k in gaps.items() if k},
                            _unknown_regime(valid, asset_type))


def _unknown_regime(valid: pd.DataFrame, asset_type: AssetType) -> int:
    """Rows of `valid` whose regime has no fitted level (0 for a type without levels)."""
    if asset_type.regimes is None or not asset_type.regimes.levels or valid.empty:
        return 0
    from features.regimes import level_index

    return int((level_index(valid, asset_type.regimes) < 0).sum())


def _age_in_periods(asset: pd.Series, ts: pd.DatetimeIndex, period_s: float,
                    life_starts: Mapping[str, pd.Timestamp]) -> np.ndarray:
    """Age in sampling periods (1 at the life start), the `cycle` of a timestamp type.

    The start is the asset's stored life start, else its earliest timestamp in this batch.
    Rounded to whole periods: a reading a little early or late keeps its slot, two readings
    in one slot are duplicates of (asset_id, cycle).
    """
    frame = pd.DataFrame({"a": asset.fillna("").to_numpy(), "t": ts})
    first = frame.groupby("a")["t"].transform("min")
    known = frame["a"].map({str(k): pd.Timestamp(v) for k, v in life_starts.items()})
    start = pd.to_datetime(known, utc=True).fillna(first)
    age = (frame["t"] - start).dt.total_seconds().to_numpy() / float(period_s)
    return np.round(age) + 1.0


def _scatter(n: int, positions: np.ndarray) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    mask[positions] = True
    return mask


# ---- quarantine store ---------------------------------------------------------------


def write_quarantine(
    result: ValidationResult | pd.DataFrame, settings, *, source: str | None = None
) -> Path:
    """Append this batch's quarantined rows under settings.quarantine_dir; return its path.

    Each call writes one new parquet file (never rewrites earlier batches), so
    appending is atomic per batch (features.atomic). Raw columns are stored as
    strings, because rejected rows are by definition the ones whose types cannot
    be trusted. A batch with
    no rejected rows still writes an (empty) file, so every ingest leaves a
    trace. `counts.jsonl` gets one line per batch (rewritten atomically).

    `result` may also be a bare quarantine frame (rows + quarantine_reason), e.g.
    validation's rejects concatenated with rows the caller rejected itself; its
    counts are then taken per reason. `source` (where the batch came from) is
    stored as a column and in the ledger.
    """
    if isinstance(result, pd.DataFrame):
        frame = result
        reasons = frame[QUARANTINE_REASON].value_counts() if len(frame) else {}
        counts = {
            "quarantined": len(frame),
            "reasons": {str(k): int(v) for k, v in dict(reasons).items()},
        }
    else:
        frame, counts = result.quarantined, dict(result.counts)
    qdir = Path(settings.quarantine_dir)
    qdir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    batch = f"quarantine-{now:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:8]}"
    q = frame.copy()
    for c in q.columns:
        q[c] = q[c].astype("string")
    q["quarantined_at"] = pd.Timestamp(now)
    q["source"] = pd.array([source] * len(q), dtype="string")
    path = atomic.write_parquet(q, qdir / f"{batch}.parquet")

    ledger = qdir / "counts.jsonl"
    line = json.dumps({"batch": batch, "at": now.isoformat(), "source": source, **counts}) + "\n"
    old = ledger.read_bytes() if ledger.exists() else b""
    atomic.write_bytes(ledger, old + line.encode())
    return path
