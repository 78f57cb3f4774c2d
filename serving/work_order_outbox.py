"""The work-order outbox: a proposal is stored before it is sent, and kept until delivered.

    WorkOrderProposal ─► Outbox.add (one transaction) ─► row `pending`
        deliver(): claim (a lease) ─► POST work_orders.cmms_url, JSON body,
                                      Idempotency-Key: <proposal_id>
          2xx ─────────► `delivered`
          other 4xx ───► `rejected`: the CMMS's message kept and listed; not retried until
                         `twinops work-orders send --retry-rejected`
          anything else (refused, timeout, 5xx, 401/403/408/425/429) ─► still `pending`:
                         attempts + 1, last_error, next_attempt_at = now + base x
                         2^(attempts-1), capped (a Retry-After of 429/503 is honoured)

Never lost: the row is committed before any POST, so a crash between the two leaves it
pending, and a crash during the POST leaves it leased for a while, then pending again.
Delivery is therefore at-least-once; the CMMS deduplicates on the Idempotency-Key (the
proposal id, stable per asset, episode and action). 401/403 stay pending: they say the
credentials are wrong, not the proposal, and must not turn every proposal into a rejection.

Why SQLite (stdlib sqlite3): one file in the state dir, atomic commits that survive a
crash (WAL, synchronous FULL), and a lock that keeps two monitor runs from claiming the same
row; the prediction log is kept the same way. No broker to run for a handful of rows a day.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

PENDING, DELIVERED, REJECTED = "pending", "delivered", "rejected"
#: Codes that say "try again later" or "your credentials", not "this request is wrong".
RETRIED_4XX = {401, 403, 408, 425, 429}
#: Extra seconds a claimed row stays leased beyond the HTTP timeout (a crash mid-POST).
LEASE_MARGIN_S = 30.0
#: Characters of a CMMS answer kept per row.
KEEP_TEXT = 2000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS proposals (
    id TEXT PRIMARY KEY,
    asset_id TEXT NOT NULL,
    asset_type TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    delivery TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    leased_until REAL NOT NULL DEFAULT 0,
    last_attempt_at TEXT,
    last_error TEXT,
    delivered_at TEXT,
    cmms_status INTEGER,
    cmms_response TEXT
)
"""


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


class Outbox:
    """The proposals of one state dir, in `<state_dir>/work_orders.sqlite`."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def of(cls, settings) -> Outbox:
        return cls(Path(settings.state_dir) / "work_orders.sqlite")

    def _tx(self):
        """One IMMEDIATE transaction (features.atomic.sqlite_transaction)."""
        from features.atomic import sqlite_transaction

        return sqlite_transaction(self.path, _SCHEMA)

    def add(self, proposals) -> int:
        """Store proposals as pending, all in one commit; an id already stored (whatever its
        delivery) is left as it is. Returns how many were new."""
        with self._tx() as db:
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO proposals (id, asset_id, asset_type, action, payload, "
                "created_at, delivery) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p.proposal_id, p.asset_id, p.asset_type, p.action, p.model_dump_json(),
                  p.created_at.isoformat(), PENDING) for p in proposals])
            return db.total_changes - before

    def rows(self, delivery: str | None = None) -> list[dict]:
        """Every stored proposal (oldest first), with its delivery state."""
        with self._tx() as db:
            found = db.execute("SELECT * FROM proposals" + (" WHERE delivery = ?" if delivery
                               else "") + " ORDER BY created_at, id",
                               (delivery,) if delivery else ()).fetchall()
        return [{**dict(r), "payload": json.loads(r["payload"])} for r in found]

    def counts(self) -> dict[str, int]:
        with self._tx() as db:
            found = db.execute("SELECT delivery, COUNT(*) FROM proposals GROUP BY delivery")
            return {PENDING: 0, DELIVERED: 0, REJECTED: 0, **dict(found.fetchall())}

    def retry_rejected(self) -> int:
        """Rejected proposals back to pending (after the CMMS mapping was fixed)."""
        with self._tx() as db:
            return db.execute("UPDATE proposals SET delivery = ?, next_attempt_at = 0 "
                              "WHERE delivery = ?", (PENDING, REJECTED)).rowcount

    def claim(self, now: float, lease_s: float, *, force: bool = False) -> list[sqlite3.Row]:
        """Pending rows due at `now` (all pending with `force`), leased for `lease_s` so that
        another sender does not post them meanwhile."""
        with self._tx() as db:
            due = db.execute(
                "SELECT id, payload, attempts FROM proposals WHERE delivery = ? AND "
                "leased_until <= ? AND (? OR next_attempt_at <= ?) ORDER BY created_at, id",
                (PENDING, now, force, now)).fetchall()
            db.executemany("UPDATE proposals SET leased_until = ? WHERE id = ?",
                           [(now + lease_s, r["id"]) for r in due])
        return due

    def record(self, proposal_id: str, now: float, *, delivery: str, error: str | None = None,
               status: int | None = None, response: str | None = None,
               next_attempt_at: float = 0.0) -> None:
        """The outcome of one attempt."""
        with self._tx() as db:
            db.execute(
                "UPDATE proposals SET delivery = ?, attempts = attempts + 1, leased_until = 0, "
                "last_attempt_at = ?, last_error = ?, cmms_status = ?, cmms_response = ?, "
                "next_attempt_at = ?, delivered_at = ? WHERE id = ?",
                (delivery, _iso(now), error, status, response, next_attempt_at,
                 _iso(now) if delivery == DELIVERED else None, proposal_id))


def backoff_s(cfg, attempts: int) -> float:
    """Wait after the `attempts`-th failed attempt: base x 2^(attempts-1), capped."""
    return min(cfg.backoff_base_s * 2.0 ** max(attempts - 1, 0), cfg.backoff_max_s)


def _retry_after(response, cfg) -> float | None:
    try:
        return min(float(response.headers.get("Retry-After", "")), cfg.backoff_max_s)
    except ValueError:
        return None


def _headers(cfg, proposal_id: str, env) -> dict[str, str]:
    headers = {"Idempotency-Key": proposal_id, "Content-Type": "application/json"}
    if cfg.token_env:
        headers["Authorization"] = f"Bearer {env[cfg.token_env]}"
    return headers


def deliver(outbox: Outbox, cfg, *, client=None, now: float | None = None,
            force: bool = False, env=None) -> dict:
    """POST every due pending proposal to cfg.cmms_url (a WorkOrderSettings); returns counts.

    Without cmms_url nothing is posted (the proposals wait, listed). `client`: an
    httpx.Client (tests pass one over a mock transport); `force`: ignore the backoff.
    """
    import httpx

    env = os.environ if env is None else env
    summary = {"cmms": cfg.cmms_url, "attempted": 0, DELIVERED: 0, "failed": 0, REJECTED: 0}
    if cfg.cmms_url is None:
        return {**summary, PENDING: outbox.counts()[PENDING]}
    if cfg.token_env and cfg.token_env not in env:
        return {**summary, PENDING: outbox.counts()[PENDING],
                "error": f"environment variable {cfg.token_env} (work_orders.token_env) is "
                         "not set: nothing was posted"}
    now = time.time() if now is None else now
    own = client is None
    client = client or httpx.Client(timeout=cfg.timeout_s)
    try:
        for row in outbox.claim(now, cfg.timeout_s + LEASE_MARGIN_S, force=force):
            summary["attempted"] += 1
            outcome = _post(client, cfg, row, env)
            done = outcome["delivery"]
            summary[done if done != PENDING else "failed"] += 1
            if done == PENDING:
                wait = outcome.pop("retry_after", None)
                outcome["next_attempt_at"] = now + (wait if wait is not None
                                                    else backoff_s(cfg, row["attempts"] + 1))
            outbox.record(row["id"], now, **outcome)
    finally:
        if own:
            client.close()
    return {**summary, PENDING: outbox.counts()[PENDING]}


def _post(client, cfg, row, env) -> dict:
    """One POST → the fields Outbox.record takes (and `retry_after`, seconds, if given)."""
    import httpx

    try:
        response = client.post(cfg.cmms_url, content=row["payload"],
                               headers=_headers(cfg, row["id"], env), timeout=cfg.timeout_s)
    except httpx.HTTPError as exc:  # refused, reset, timeout, ...
        return {"delivery": PENDING, "error": f"{type(exc).__name__}: {exc}"[:KEEP_TEXT]}
    text = response.text[:KEEP_TEXT]
    code = response.status_code
    if 200 <= code < 300:
        return {"delivery": DELIVERED, "status": code, "response": text}
    error = f"HTTP {code}: {text}"
    if 400 <= code < 500 and code not in RETRIED_4XX:
        return {"delivery": REJECTED, "status": code, "response": text, "error": error}
    return {"delivery": PENDING, "status": code, "response": text, "error": error,
            "retry_after": _retry_after(response, cfg) if code in (429, 503) else None}
