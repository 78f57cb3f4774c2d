"""The alert store: episodes, deduplication, throttled notification, acknowledgement.

    candidate alerts (monitoring.alerts) ─► AlertStore.record   one open episode per key:
                                                                 new key → a new alert,
                                                                 open key → seen again,
                                                                 checked and absent → closed
         ─► AlertStore.deliver_pending ─► Prefect notification blocks (`alerts.notify`)
                                          each alert once per block; at most
                                          alerts.max_notifications per throttle_minutes;
                                          a failure stays pending, retried next run
    twinops alerts list | ack ─► AlertStore.rows / ack          load_alerts ─► a DataFrame

    run_alerts(settings, verdict): what the monitor flow's alerts task calls: gathers the
    fleet risk, the feed's readings and the verdict, records, delivers, sums up.

Why SQLite (stdlib sqlite3) in the state dir: several processes write the store (scheduled
monitor runs of each type, `twinops alerts ack`), and SQLite gives them atomic transactions
and a unique index across processes without a server to run; the prediction log is a
SQLite file beside it for the same reason. One open episode per key is a partial unique
index, so two monitor runs at once cannot both open it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitoring.alerts import Alert, Rules

if TYPE_CHECKING:
    import pandas as pd

    from features.settings import Settings

log = logging.getLogger(__name__)

STORE_FILE = "alerts.sqlite"
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    episode TEXT NOT NULL,
    kind TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    asset_id TEXT,
    sensor TEXT,
    severity TEXT NOT NULL,
    message TEXT NOT NULL,
    evidence TEXT NOT NULL,
    model_version TEXT,
    raised_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    closed_at TEXT,
    acked_by TEXT,
    acked_at TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS one_open_episode ON alerts (episode)
    WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS deliveries (
    alert_id TEXT NOT NULL REFERENCES alerts (alert_id),
    target TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    delivered_at TEXT,
    last_error TEXT,
    PRIMARY KEY (alert_id, target)
);
"""


def _iso(moment: datetime) -> str:
    """UTC, one fixed width: stored times compare as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def store_path(settings: Settings) -> Path:
    return Path(settings.state_dir) / STORE_FILE


@dataclass
class Recorded:
    """What one run's candidates did to the store."""

    opened: list[Alert] = field(default_factory=list)
    #: Candidates whose episode was already open (not raised again).
    repeated: int = 0
    closed: list[str] = field(default_factory=list)


@dataclass
class Delivery:
    """One delivery round: alert ids per outcome."""

    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    #: Pending alerts held back by the throttle (they wait for a later run).
    throttled: list[str] = field(default_factory=list)


class AlertStore:
    """The SQLite file of alerts and their deliveries (see the module docstring)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)

    def _tx(self, write: bool = True):
        """One transaction (features.atomic.sqlite_transaction)."""
        from features.atomic import sqlite_transaction

        return sqlite_transaction(self.path, _SCHEMA, write=write)

    # ---- episodes ----
    def record(self, rules: Rules, now: datetime) -> Recorded:
        """Open an episode per new candidate, mark repeats seen, close what cleared."""
        out = Recorded()
        stamp = _iso(now)
        current = {a.episode for a in rules.alerts}
        with self._tx() as db:
            open_rows = db.execute("SELECT alert_id, episode, kind, asset_type, asset_id "
                                   "FROM alerts WHERE closed_at IS NULL").fetchall()
            open_episodes = {r["episode"] for r in open_rows}
            for alert in rules.alerts:
                if alert.episode in open_episodes:
                    db.execute("UPDATE alerts SET last_seen_at = ? WHERE episode = ? AND "
                               "closed_at IS NULL", (stamp, alert.episode))
                    out.repeated += 1
                    continue
                db.execute(
                    "INSERT INTO alerts (alert_id, episode, kind, asset_type, asset_id, sensor,"
                    " severity, message, evidence, model_version, raised_at, last_seen_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (alert.alert_id, alert.episode, alert.kind, alert.asset_type,
                     alert.asset_id, alert.sensor, alert.severity, alert.message,
                     json.dumps(alert.evidence, default=str), alert.model_version,
                     _iso(alert.raised_at), stamp))
                open_episodes.add(alert.episode)
                out.opened.append(alert)
            for row in open_rows:
                scope = (row["kind"], row["asset_type"], row["asset_id"])
                if scope in rules.checked and row["episode"] not in current:
                    db.execute("UPDATE alerts SET closed_at = ? WHERE alert_id = ?",
                               (stamp, row["alert_id"]))
                    out.closed.append(row["alert_id"])
        return out

    # ---- acknowledgement ----
    def ack(self, alert_ids: list[str], by: str, now: datetime) -> dict[str, list[str]]:
        """Acknowledge alerts (all or none): {"acked": [...], "already": [...]}.

        An acknowledged alert is not notified any more; its episode stays open until the
        condition clears, so it is not raised again either. Raises KeyError naming unknown
        ids, ValueError for an empty `by`.
        """
        if not by.strip():
            raise ValueError("--by: say who acknowledges (a name)")
        with self._tx() as db:
            marks = ",".join("?" * len(alert_ids))
            rows = {r["alert_id"]: r["acked_by"] for r in db.execute(
                f"SELECT alert_id, acked_by FROM alerts WHERE alert_id IN ({marks})",
                alert_ids)}
            unknown = [a for a in alert_ids if a not in rows]
            if unknown:
                raise KeyError(f"no such alert: {', '.join(unknown)}")
            fresh = [a for a in dict.fromkeys(alert_ids) if rows[a] is None]
            for alert_id in fresh:
                db.execute("UPDATE alerts SET acked_by = ?, acked_at = ? WHERE alert_id = ?",
                           (by.strip(), _iso(now), alert_id))
        return {"acked": fresh, "already": [a for a in dict.fromkeys(alert_ids)
                                            if a not in fresh]}

    # ---- notification ----
    def deliver_pending(self, targets: list[str], blocks: dict[str, Any], *, now: datetime,
                        max_notifications: int, throttle: timedelta,
                        asset_type: str | None = None) -> Delivery:
        """Notify every pending alert (not acked, not yet delivered to each of `targets`),
        most severe and oldest first, within the throttle's budget.

        `blocks`: {target: a loaded notification block, or the Exception loading it
        raised}. A failed send is recorded (attempts, error) and stays pending: the alert is
        never lost, the next run tries again; the target is not tried again in this run
        (one timeout per run, not one per alert, on a channel that is down). Nothing here
        raises for a delivery.
        """
        out = Delivery()
        if not targets:
            return out
        pending = self._pending(targets, asset_type)
        budget = max(0, max_notifications - self._sent_since(now - throttle))
        down: dict[str, str] = {}  # a target that failed once is not tried again this run
        for row, missing in pending:
            if len(out.sent) + len(out.failed) >= budget:
                out.throttled.append(row["alert_id"])
                continue
            subject, body = notification_text(row)
            errors = []
            for target in missing:
                if target in down:
                    errors.append(f"{target}: not tried, it failed earlier in this run")
                    continue
                error = _send(blocks.get(target), subject, body)
                self._mark(row["alert_id"], target, now, error)
                if error:
                    down[target] = error
                    errors.append(f"{target}: {error}")
            if errors:
                out.failed[row["alert_id"]] = "; ".join(errors)
            else:
                out.sent.append(row["alert_id"])
        return out

    def _pending(self, targets: list[str], asset_type: str | None) -> list[tuple]:
        with self._tx(write=False) as db:
            rows = db.execute(
                "SELECT * FROM alerts WHERE acked_by IS NULL"
                + (" AND asset_type = ?" if asset_type else ""),
                (asset_type,) if asset_type else ()).fetchall()
            done = {(r["alert_id"], r["target"]) for r in db.execute(
                "SELECT alert_id, target FROM deliveries WHERE delivered_at IS NOT NULL")}
        out = []
        for row in rows:
            missing = [t for t in targets if (row["alert_id"], t) not in done]
            if missing:
                out.append((row, missing))
        out.sort(key=lambda p: (SEVERITY_ORDER.get(p[0]["severity"], 9), p[0]["raised_at"]))
        return out

    def _sent_since(self, since: datetime) -> int:
        with self._tx(write=False) as db:
            return db.execute("SELECT COUNT(DISTINCT alert_id) FROM deliveries "
                              "WHERE delivered_at >= ?", (_iso(since),)).fetchone()[0]

    def _mark(self, alert_id: str, target: str, now: datetime, error: str | None) -> None:
        stamp = _iso(now)
        with self._tx() as db:
            db.execute(
                "INSERT INTO deliveries (alert_id, target, attempts, last_attempt_at,"
                " delivered_at, last_error) VALUES (?, ?, 1, ?, ?, ?)"
                " ON CONFLICT (alert_id, target) DO UPDATE SET attempts = attempts + 1,"
                " last_attempt_at = excluded.last_attempt_at,"
                " delivered_at = excluded.delivered_at, last_error = excluded.last_error",
                (alert_id, target, stamp, None if error else stamp, error))

    # ---- reading ----
    def rows(self) -> list[dict]:
        """Every alert with its deliveries (`deliveries`: {target: {...}}), newest first."""
        if not self.path.exists():
            return []
        with self._tx(write=False) as db:
            alerts = [dict(r) for r in db.execute(
                "SELECT * FROM alerts ORDER BY raised_at DESC, alert_id")]
            sent: dict[str, dict] = {}
            for r in db.execute("SELECT * FROM deliveries"):
                sent.setdefault(r["alert_id"], {})[r["target"]] = {
                    k: r[k] for k in ("attempts", "last_attempt_at", "delivered_at",
                                      "last_error")}
        for alert in alerts:
            alert["evidence"] = json.loads(alert["evidence"])
            alert["deliveries"] = sent.get(alert["alert_id"], {})
        return alerts


def _send(block, subject: str, body: str) -> str | None:
    """Send through one block; the error in words, or None when it went out.

    `raise_on_failure`: Apprise-backed blocks (Slack, e-mail, ...) only log a failed send
    unless asked to raise, and a failure that is not seen cannot be retried.
    """
    if block is None:
        return "not loaded"
    if isinstance(block, BaseException):
        return f"{type(block).__name__}: {block}"
    try:
        with block.raise_on_failure():
            block.notify(body, subject)
    except Exception as exc:  # any failure of the channel: keep the alert pending
        return f"{type(exc).__name__}: {exc}"[:500]
    return None


def notification_text(row) -> tuple[str, str]:
    """(subject, body) of an alert row: the message first, then the evidence, then how to
    acknowledge it."""
    evidence = json.loads(row["evidence"]) if isinstance(row["evidence"], str) else row["evidence"]
    where = f"{row['asset_type']}/{row['asset_id'] or '*'}"
    subject = f"twinops {row['severity']}: {row['kind']} {where}"
    facts = ", ".join(f"{k}={v}" for k, v in evidence.items()
                      if v is not None and not isinstance(v, dict | list))
    body = "\n".join([
        row["message"], "",
        f"alert {row['alert_id']} · {row['kind']} · {where} · raised {row['raised_at']}"
        + (f" · model version {row['model_version']}" if row["model_version"] else ""),
        f"evidence: {facts}",
        *([f"closed at {row['closed_at']} (the condition has cleared)"]
          if row["closed_at"] else []),
        f"acknowledge: twinops alerts ack {row['alert_id']} --by NAME",
    ])
    return subject, body


def load_blocks(names: list[str]) -> dict[str, Any]:
    """{name: the saved Prefect notification block, or the exception loading it raised}.

    Names are block document slugs, `<block-type-slug>/<document name>`; a missing one is
    reported as a delivery error naming `alerts.notify`, never raised.
    """
    from prefect.blocks.core import Block

    out: dict[str, Any] = {}
    for name in names:
        try:
            out[name] = Block.load(name)
        except Exception as exc:  # a missing document, an unreachable API
            out[name] = type(exc)(f"alerts.notify: cannot load Prefect block {name!r} ({exc}); "
                                  "save it first (docs/alerts.md)")
    return out


def load_alerts(settings: Settings) -> pd.DataFrame:
    """Every alert as a frame (KPIs such as the warning lead time before a failure).

    Columns: alert_id, episode, kind, asset_id, asset_type, sensor, severity, message,
    model_version, raised_at, last_seen_at, closed_at, acked_at (UTC timestamps; NaT when
    not), acked_by, notified_at (first delivery, UTC), notify_attempts, notify_error (the
    last error of a delivery still pending), evidence (dict).
    """
    import pandas as pd

    columns = ["alert_id", "episode", "kind", "asset_id", "asset_type", "sensor", "severity",
               "message", "model_version", "raised_at", "last_seen_at", "closed_at",
               "acked_by", "acked_at", "notified_at", "notify_attempts", "notify_error",
               "evidence"]
    rows = AlertStore(store_path(settings)).rows()
    for row in rows:
        sent = row.pop("deliveries").values()
        times = [d["delivered_at"] for d in sent if d["delivered_at"]]
        row["notified_at"] = min(times) if times else None
        row["notify_attempts"] = sum(d["attempts"] for d in sent)
        errors = [d["last_error"] for d in sent if not d["delivered_at"] and d["last_error"]]
        row["notify_error"] = errors[-1] if errors else None
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("raised_at", "last_seen_at", "closed_at", "acked_at", "notified_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True, format="ISO8601")
    frame["notify_attempts"] = frame["notify_attempts"].fillna(0).astype(int)
    return frame


# ---- the monitor's alerts task ------------------------------------------------------------


def run_alerts(settings: Settings, verdict=None, *, now: datetime | None = None,
               blocks: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every rule over settings' asset type, then record and notify; a summary dict.

    Keys: store, targets, raised (new episodes: id, kind, asset, sensor, severity,
    message), repeated, closed (ids), notified (ids), failed ({id: error}, kept pending),
    throttled (ids), errors. Never raises: a part that cannot run (an unreadable registry,
    a broken store) is logged and listed under `errors`, its episodes are left as they are,
    and the rest still runs; alerts must not fail the monitor run. `blocks` (tests): the
    notification blocks by name; default Block.load of each `alerts.notify` name.
    """
    from monitoring.alerts import drift_alerts

    config = settings.alerts
    log = _logger()
    now = now or datetime.now(UTC)
    store = AlertStore(store_path(settings))
    summary: dict[str, Any] = {"store": str(store.path), "targets": list(config.notify),
                               "raised": [], "repeated": 0, "closed": [], "notified": [],
                               "failed": {}, "throttled": [], "errors": []}
    if not config.enabled:
        return {**summary, "enabled": False}

    def attempt(what: str, make, fallback):
        try:
            return make()
        except Exception as exc:  # alerts are auxiliary: the monitor run goes on
            log.exception("alerts: %s failed", what)
            summary["errors"].append(f"{what}: {type(exc).__name__}: {exc}")
            return fallback

    rules, champion = attempt("risk", lambda: _risk(settings, now), (Rules(), None))
    rules += attempt("sensors", lambda: _sensors(settings, now), Rules())
    if verdict is not None:
        rules += attempt("drift", lambda: drift_alerts(
            verdict, settings.asset_type, now=now, model_version=champion), Rules())
    recorded = attempt("store", lambda: store.record(rules, now), Recorded())
    summary.update(
        raised=[{"alert_id": a.alert_id, "kind": a.kind, "asset_id": a.asset_id,
                 "sensor": a.sensor, "severity": a.severity, "message": a.message}
                for a in recorded.opened],
        repeated=recorded.repeated, closed=recorded.closed)
    if not config.notify:
        return summary
    delivery = attempt("notify", lambda: store.deliver_pending(
        config.notify, blocks if blocks is not None else load_blocks(config.notify),
        now=now, max_notifications=config.max_notifications,
        throttle=timedelta(minutes=config.throttle_minutes),
        asset_type=settings.asset_type), Delivery())
    for alert_id, error in delivery.failed.items():
        log.warning("alerts: notification of %s failed, kept pending: %s", alert_id, error)
    if delivery.throttled:
        log.warning("alerts: %d alert(s) held back by the throttle (%d per %g min)",
                    len(delivery.throttled), config.max_notifications, config.throttle_minutes)
    summary.update(notified=delivery.sent, failed=delivery.failed, throttled=delivery.throttled)
    return summary


def _logger():
    """The Prefect run's logger inside the monitor flow (its logs are the run's), else ours."""
    from prefect.exceptions import MissingContextError
    from prefect.logging import get_run_logger

    try:
        return get_run_logger()
    except MissingContextError:
        return log


def _risk(settings: Settings, now: datetime) -> tuple[Rules, str | None]:
    """Risk rules over the type's champion, and its version (no champion: nothing judged)."""
    from features.datastore import last_failures, load_assets
    from features.maintenance import criticality_of
    from monitoring.alerts import risk_alerts
    from serving.fleet import local_lanes, ranked_fleet

    kind = settings.asset_type
    lanes = local_lanes(settings, [kind])
    if kind not in lanes:
        return Rules(), None
    version = str(lanes[kind].holder.current.version)
    assets = load_assets(settings)
    items, _ = ranked_fleet(kind, None, lanes=lanes, assets=assets,
                            criticality=criticality_of(settings, assets),
                            failed_at=last_failures(settings), now=now)  # the whole fleet once
    return risk_alerts(items, settings.alerts.risk_threshold, now=now,
                       model_versions={kind: version}), version


def _sensors(settings: Settings, now: datetime) -> Rules:
    """Sensor rules over the feed (stored + quarantined readings) of the type."""
    import pandas as pd

    from features.contract import ASSET_ID, TIMESTAMP
    from features.datastore import last_failures, load_readings
    from monitoring.alerts import feed_readings, reference_flat_share, sensor_alerts

    kind, window = settings.type, settings.alerts.readings_window
    sensors = [ch.name for ch in kind.sensors]
    stored = load_readings(settings)
    parts = [pd.read_parquet(p) for p in sorted(Path(settings.quarantine_dir).glob("*.parquet"))]
    quarantined = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[ASSET_ID, TIMESTAMP])
    feed = feed_readings(stored, quarantined, sensors)
    last_reading = feed.groupby(ASSET_ID)[TIMESTAMP].max()
    failed = last_failures(settings)
    out_of_service = {a for a, t in last_reading.items()
                      if a in failed and not t.timestamp() > failed[a]}
    return sensor_alerts(feed, kind, window, now=now,
                         reference_flat=reference_flat_share(stored, sensors, window),
                         out_of_service=out_of_service)
