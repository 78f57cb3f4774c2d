"""Alert rules: what a monitor run saw that a person should hear about, as candidate alerts.

    the ranked fleet (serving.fleet.ranked_fleet) ► risk_alerts    risk ≥ alerts.risk_threshold
    the feed's last N readings per asset ─────────► sensor_alerts  dead · frozen · out of range
      (feed_readings: stored + quarantined)                        per declared sensor
    the monitor's Verdict (monitoring.check) ─────► drift_alerts   one per asset type
                                                  ─► Rules(alerts, checked)

Pure functions of frames and values: no store, no server, no clock of their own. The alert
store (monitoring.alert_store) turns candidates into episodes, deduplicates, throttles and
notifies.

`checked` holds the (kind, asset type, asset id) a rule could judge in this run. Only those
open episodes close when no candidate repeats them: an asset without features, or with
fewer than N readings, keeps its episode open rather than see it closed by a lack of
evidence.

Why the quarantine is read too: validation rejects a NaN in a required sensor and a value
outside the declared range (features.validation), so the stored readings never show a dead
or out-of-range required sensor. What the feed really sent is the stored readings plus the
quarantined ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from features.asset_types import AssetType

#: Severity per kind (sensor kinds carry the sensor's name). A high failure risk asks for a
#: decision now; a sensor fault or a drift asks for a look (the data or the model may be
#: wrong, not yet the asset).
SEVERITY = {"risk": "critical", "sensor_dead": "warning", "sensor_frozen": "warning",
            "sensor_out_of_range": "warning", "drift": "warning"}
#: A sensor counts as frozen only where at most this share of the fleet's N-reading windows
#: is flat: a quantised or constant sensor (C-MAPSS FD001's sensor_6, a fixed set point)
#: has flat windows all the time, and one more is no fault.
FROZEN_REFERENCE_MAX_SHARE = 0.05

Checked = set[tuple[str, str, str | None]]


@dataclass(frozen=True)
class Alert:
    """One candidate alert; its `episode` is what deduplication keys on."""

    kind: str
    asset_type: str
    #: None for a fleet-level alert (drift).
    asset_id: str | None
    severity: str
    message: str
    #: The numbers behind the message (JSON-serialisable), report paths, model version.
    evidence: dict[str, Any]
    raised_at: datetime
    sensor: str | None = None
    model_version: str | None = None
    alert_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def episode(self) -> str:
        return episode_key(self.kind, self.asset_type, self.asset_id, self.sensor)


def episode_key(kind: str, asset_type: str, asset_id: str | None, sensor: str | None) -> str:
    """`<type>/<asset or *>/<kind>[/<sensor>]`: one open episode per key at a time."""
    return "/".join([asset_type, asset_id or "*", kind] + ([sensor] if sensor else []))


@dataclass
class Rules:
    """Candidate alerts of one run and what the rules could judge (see the module doc)."""

    alerts: list[Alert] = field(default_factory=list)
    checked: Checked = field(default_factory=set)

    def __add__(self, other: Rules) -> Rules:
        return Rules(self.alerts + other.alerts, self.checked | other.checked)


# ---- risk ---------------------------------------------------------------------------------


def risk_alerts(items: list[dict], threshold: float, *, now: datetime,
                model_versions: dict[str, str] | None = None) -> Rules:
    """An alert per ranked asset whose risk (p_fail × criticality) is at or above threshold.

    `items`: serving.fleet.ranked_fleet's rows (RiskItem fields). An item without a risk
    (no features) is not judged; `model_versions`: {asset type: the champion version that
    scored it}.
    """
    out = Rules()
    for item in items:
        risk = item.get("risk")
        if risk is None or not np.isfinite(risk):
            continue
        kind, asset = str(item["asset_type"]), str(item["asset_id"])
        out.checked.add(("risk", kind, asset))
        if risk < threshold:
            continue
        unit = item.get("rul_unit", "")
        version = (model_versions or {}).get(kind)
        stale = " (its features are stale)" if item.get("data_quality") == "stale" else ""
        message = (f"{asset} ({kind}): risk {risk:.2f} at or above {threshold:g}: "
                   f"p_fail {item['p_fail']:.0%} within {item['horizon']:g} {unit} "
                   f"x criticality {item['criticality']:g}; RUL {item['rul']:.1f} "
                   f"[{item['rul_lower']:.1f}, {item['rul_upper']:.1f}] {unit}{stale}")
        evidence = {k: item.get(k) for k in ("risk", "p_fail", "criticality", "horizon",
                                             "rul", "rul_lower", "rul_upper", "rul_unit",
                                             "data_quality", "last_reading_age_s")}
        out.alerts.append(Alert("risk", kind, asset, SEVERITY["risk"], message,
                                {**evidence, "threshold": threshold, "model_version": version},
                                now, model_version=version))
    return out


# ---- sensor health ------------------------------------------------------------------------


def feed_readings(stored: pd.DataFrame, quarantined: pd.DataFrame,
                  columns: list[str]) -> pd.DataFrame:
    """What the feed sent: stored readings plus quarantined ones, one row per (asset, time).

    Quarantined values are strings (features.validation); an unparsable one becomes NaN,
    i.e. no usable value. A quarantined copy of a stored row (a re-sent reading) is dropped,
    as is a row without an asset or a readable timestamp.
    """
    import pandas as pd

    from features.contract import ASSET_ID, TIMESTAMP

    def typed(frame: pd.DataFrame) -> pd.DataFrame:
        out = pd.DataFrame({
            ASSET_ID: frame[ASSET_ID].astype("string") if ASSET_ID in frame else pd.NA,
            TIMESTAMP: pd.to_datetime(frame[TIMESTAMP], utc=True, errors="coerce",
                                      format="mixed") if TIMESTAMP in frame else pd.NaT,
        }, index=frame.index)
        for col in columns:
            out[col] = (pd.to_numeric(frame[col], errors="coerce").astype(float)
                        if col in frame else np.nan)
        return out

    both = pd.concat([typed(stored), typed(quarantined)], ignore_index=True)
    both = both.dropna(subset=[ASSET_ID, TIMESTAMP])
    both = both.drop_duplicates([ASSET_ID, TIMESTAMP], keep="first")  # stored rows first
    return both.sort_values([ASSET_ID, TIMESTAMP], kind="mergesort").reset_index(drop=True)


def _flat(frame: pd.DataFrame, sensors: list[str], window: int):
    """Per row: whether the `window` readings ending there (one asset) are all present and
    all one value; NaN where the asset has fewer readings."""
    from features.contract import ASSET_ID

    rolling = frame.groupby(ASSET_ID, sort=False)[sensors].rolling(window, min_periods=window)
    spread = (rolling.max() - rolling.min()).reset_index(level=0, drop=True)
    return (spread == 0.0).where(spread.notna())


def reference_flat_share(reference: pd.DataFrame, sensors: list[str],
                         window: int) -> dict[str, float]:
    """{sensor: share of the fleet's complete `window`-reading windows that are flat}: how
    often the sensor stands still in the history (NaN: no complete window)."""
    from features.contract import ASSET_ID, TIMESTAMP

    present = [s for s in sensors if s in reference.columns]
    if reference.empty or not present:
        return dict.fromkeys(sensors, float("nan"))
    ordered = reference.sort_values([ASSET_ID, TIMESTAMP], kind="mergesort")
    flat = _flat(ordered[[ASSET_ID, *present]].astype({s: float for s in present}),
                 present, window)
    share = flat.mean()  # NaN rows (short histories, gaps) are skipped
    return {s: float(share.get(s, np.nan)) for s in sensors}


def sensor_alerts(feed: pd.DataFrame, asset_type: AssetType, window: int, *, now: datetime,
                  reference_flat: dict[str, float],
                  out_of_service: set[str] | frozenset = frozenset()) -> Rules:
    """Dead, frozen and out-of-range sensors in each asset's last `window` feed readings.

    dead: missing in all of them; frozen: one value in all of them, where the sensor moves
    in the fleet's history (`reference_flat` at most FROZEN_REFERENCE_MAX_SHARE); out of
    range: any of them outside the declared [min, max]. Dead and frozen need `window`
    readings; an asset in `out_of_service` (failed, not reported since) is not judged.
    """
    from features.contract import ASSET_ID, TIMESTAMP

    out = Rules()
    kind = asset_type.name
    sensors = [ch for ch in asset_type.sensors if ch.name in feed.columns]
    names = [ch.name for ch in sensors]
    if feed.empty or not names:
        return out
    last = feed.groupby(ASSET_ID, sort=False).tail(window)
    for asset, rows in last.groupby(ASSET_ID, sort=False):
        asset = str(asset)
        if asset in out_of_service:
            continue
        values = rows[names].to_numpy(dtype=float)
        full = len(rows) >= window
        since, until = rows[TIMESTAMP].min().isoformat(), rows[TIMESTAMP].max().isoformat()
        span = {"readings": len(rows), "first_reading": since, "last_reading": until}
        out.checked.add(("sensor_out_of_range", kind, asset))
        if full:
            out.checked.update({("sensor_dead", kind, asset), ("sensor_frozen", kind, asset)})
        for j, ch in enumerate(sensors):
            column = values[:, j]
            present = column[np.isfinite(column)]
            lead = f"{asset} ({kind}): {ch.name}"
            if full and not len(present):
                out.alerts.append(_sensor("sensor_dead", kind, asset, ch.name, now, span,
                                          f"{lead} is dead: no value in its last {len(rows)} "
                                          f"readings ({since} to {until})"))
                continue
            share = reference_flat.get(ch.name, np.nan)
            if (full and len(present) == len(column) and present.max() == present.min()
                    and np.isfinite(share) and share <= FROZEN_REFERENCE_MAX_SHARE):
                out.alerts.append(_sensor(
                    "sensor_frozen", kind, asset, ch.name, now,
                    {**span, "value": float(present[0]), "reference_flat_share": share},
                    f"{lead} is frozen at {present[0]:g} {ch.unit} over its last {len(rows)} "
                    f"readings, where {share:.0%} of the fleet's windows are flat"))
            low = present < ch.min if ch.min is not None else np.zeros(len(present), bool)
            high = present > ch.max if ch.max is not None else np.zeros(len(present), bool)
            if (low | high).any():
                bad = present[low | high]
                worst = float(bad[np.argmax(np.abs(bad - np.clip(bad, ch.min, ch.max)))])
                bounds = f"[{ch.min if ch.min is not None else '-inf'}, " \
                         f"{ch.max if ch.max is not None else 'inf'}]"
                out.alerts.append(_sensor(
                    "sensor_out_of_range", kind, asset, ch.name, now,
                    {**span, "outside": int(len(bad)), "worst": worst, "min": ch.min,
                     "max": ch.max, "unit": ch.unit},
                    f"{lead} is out of its declared range {bounds} {ch.unit} in {len(bad)} of "
                    f"its last {len(rows)} readings (worst {worst:g})"))
    return out


def _sensor(kind: str, asset_type: str, asset: str, sensor: str, now: datetime,
            evidence: dict, message: str) -> Alert:
    return Alert(kind, asset_type, asset, SEVERITY[kind], message,
                 {"sensor": sensor, **evidence}, now, sensor=sensor)


# ---- drift --------------------------------------------------------------------------------


def drift_alerts(verdict, asset_type: str, *, now: datetime,
                 model_version: str | None = None) -> Rules:
    """One fleet-level alert for the type when the monitor's Verdict says drift.

    A verdict that tested no column (nothing to compare) judges nothing: an open drift
    episode stays open.
    """
    out = Rules()
    if not verdict.columns:
        return out
    out.checked.add(("drift", asset_type, None))
    if not verdict.drift:
        return out
    drifted = list(verdict.drifted_columns)
    tests = {c: {k: _plain(verdict.columns[c].get(k)) for k in ("statistic", "shift", "method")}
             for c in drifted if c in verdict.columns}
    message = (f"{asset_type}: drift at equal life stage in {len(drifted)} of "
               f"{len(verdict.columns)} monitored columns ({', '.join(drifted)}); "
               f"{verdict.n_current_assets} current vs {verdict.n_reference_assets} "
               "reference assets")
    evidence = {"drifted_columns": drifted, "share": float(verdict.share), "tests": tests,
                "n_current_assets": int(verdict.n_current_assets),
                "n_reference_assets": int(verdict.n_reference_assets),
                "stage": verdict.stage, "verdict_json": verdict.verdict_json,
                "report_html": verdict.report_html, "monitor_run_id": verdict.mlflow_run_id,
                "model_version": model_version}
    out.alerts.append(Alert("drift", asset_type, None, SEVERITY["drift"], message, evidence,
                            now, model_version=model_version))
    return out


def _plain(value):
    """A JSON-friendly scalar (numpy numbers become Python ones)."""
    if isinstance(value, np.generic):
        return value.item()
    return value
