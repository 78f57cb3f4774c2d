"""Tamper-evident audit of every review decision: proposals (with their gate results),
approvals, refusals, rejections and rollbacks.

    pipelines.review ─► audit.record() ─► hash-chained entry {seq, prev, hash, ...}
        ├─► MLflow: tag `twinops.audit.<seq:06d>` on the SERVING registered model (shared)
        └─► <state_dir>/audit.jsonl (local mirror, O_APPEND + fsync)
    audit.verify() ─► chain links, hashes, seq gaps, mirror vs MLflow ─► VerifyResult
    audit.verified_history() ─► the entries, or AuditTampered (what review trusts)

Why MLflow: a local file is one per state dir and editable by whoever owns it (issue #19:
an edited audit.jsonl showed without a sign). The serving model is written only by the
service identity (docs/review.md), so its tags are the store every user shares and no
trainer or reviewer can write.
Why a hash chain: each entry carries the hash of the one before (`prev`) and its own
(`hash` = sha256 of its canonical JSON without `hash`), so an edited entry, a removed one
or a reordered pair breaks a link that `verify` names. The mirror is a second copy: a
silent edit of either side, a forged or cut tail, shows as a disagreement.
What it does NOT protect against: a writer holding the service identity's credentials (or
MLflow's database) can rewrite the whole chain consistently (no secret key signs it), and
only a mirror that writer did not also rewrite would then disagree. Nor does it prove an
entry written through another state dir's mirror: a mirror only vouches for its own lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import pydantic-settings, too slow for `twinops --help` to wait on
    from features.settings import Settings

ENTRY_PREFIX = "twinops.audit."
LOCK_PREFIX = "twinops.audit-lock."
#: MLflow validates registered-model tag values up to 100,000 chars, but its SQL schema
#: keeps `registered_model_tags.value` a VARCHAR(5000) (only model-version tags were widened
#: to TEXT), which PostgreSQL and MySQL enforce: stay under that on every backend.
MAX_ENTRY_CHARS = 4000
#: A lock tag older than this is a crashed writer's: ignored (clock skew between writers
#: counts against it). A write takes a few calls, well under a second each.
LOCK_TTL_S = 30.0
LOCK_WAIT_S = 60.0
_PROCESS_LOCK = threading.Lock()


class AuditTampered(RuntimeError):
    """The audit chain does not verify; the message names the first problem."""


class AuditWriteError(RuntimeError):
    """No entry could be appended (lock not won in time, or an entry too large)."""


@dataclass
class VerifyResult:
    ok: bool
    problems: list[str] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)


def audit_path(settings: Settings):
    return settings.state_dir / "audit.jsonl"


def canonical(entry: dict) -> str:
    """The one serialisation that is hashed and stored: sorted keys, no spaces."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), default=str)


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(
        canonical({k: v for k, v in entry.items() if k != "hash"}).encode()).hexdigest()


def mirror_id(settings: Settings) -> str:
    """Which local mirror an entry was also written to, so that this mirror's verify can
    tell a line deleted from it from an entry written elsewhere: a random id kept in the
    state dir (`audit.mirror-id`), never its path, so that a moved state dir
    (features.relocate) keeps its id and no entry names a place (hashed entries cannot be
    rewritten when the state moves)."""
    path = settings.state_dir / "audit.mirror-id"
    if not path.exists():
        from features import atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, uuid.uuid4().hex)
    return path.read_text().strip()


def _fit(entry: dict) -> dict:
    """Cut the reason strings until the entry (with seq, prev, hash) fits one tag."""
    reasons = [str(r) for r in entry["reasons"]]
    for cap in (1000, 300, 100, 40):
        entry["reasons"] = [r if len(r) <= cap else r[: cap - 3] + "..." for r in reasons]
        if len(canonical(entry)) + 200 <= MAX_ENTRY_CHARS:  # 200: seq, prev and hash
            return entry
    raise AuditWriteError(f"audit entry too large for an MLflow tag: {canonical(entry)[:200]}")


# ------------------------------------------------------------------ MLflow store
def _client(settings: Settings):
    from training.registry import _client as registry_client

    return registry_client(settings)


def _tags(client, name: str) -> dict[str, str]:
    from mlflow.exceptions import MlflowException

    try:
        return dict(client.get_registered_model(name).tags)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return {}
        raise


def _entries(tags: dict[str, str]) -> dict[int, str]:
    """seq (from the tag key) -> stored value, for every audit entry tag."""
    return {int(k[len(ENTRY_PREFIX):]): v for k, v in tags.items()
            if k.startswith(ENTRY_PREFIX) and k[len(ENTRY_PREFIX):].isdigit()}


def _hash_of(value: str) -> str:
    """The `hash` an entry claims, or the sha256 of a value that is not one (a tampered
    entry stays linked to, and verify reports it)."""
    with contextlib.suppress(ValueError, TypeError, KeyError):
        return str(json.loads(value)["hash"])
    return hashlib.sha256(value.encode()).hexdigest()


def _set_tag(client, name: str, key: str, value: str) -> None:
    """Set a tag on the registered model, creating the model on first use (the serving
    model may not exist before the first proposal)."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_registered_model_tag(name, key, value)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        with contextlib.suppress(MlflowException):  # another writer may create it first
            client.create_registered_model(name)
        client.set_registered_model_tag(name, key, value)


@contextlib.contextmanager
def _chain_lock(client, name: str):
    """Hold the chain against writers in other processes; yields the tags read under it.

    MLflow has no compare-and-set: set_registered_model_tag overwrites silently, so two
    writers that both read seq N would both write `twinops.audit.N` and one entry would be
    lost without a trace. Instead each writer adds a lock tag under a key of its own (keys
    never collide, so no write is lost), then re-reads: it holds the chain only if it sees
    no other live lock. Of two writers whose locks overlap, the later reader sees the
    earlier lock, so at most one goes on; both seeing each other both back off and retry
    after a random pause. A holder writes its entry before removing its lock, so the next
    holder's read includes that entry. Guaranteed while the backend's reads see every
    finished write (one database) and a holder finishes within LOCK_TTL_S; a holder stalled
    past that (or a writer's clock off by that much) may lose the chain to another, which
    `record`'s re-read then reports rather than hides.
    """
    from mlflow.exceptions import MlflowException

    key = f"{LOCK_PREFIX}{uuid.uuid4().hex}"
    deadline = time.monotonic() + LOCK_WAIT_S
    pause = 0.05
    while True:
        _set_tag(client, name, key, f"{time.time():.3f}")
        tags = _tags(client, name)
        now = time.time()
        rivals = [k for k, v in tags.items() if k.startswith(LOCK_PREFIX) and k != key
                  and now - _float(v) < LOCK_TTL_S]
        if not rivals:
            break
        client.delete_registered_model_tag(name, key)
        if time.monotonic() > deadline:
            raise AuditWriteError(f"audit chain of {name!r} stayed locked by {rivals}")
        time.sleep(pause * (1 + random.random()))
        pause = min(pause * 2, 1.0)
    try:
        for stale in (k for k, v in tags.items() if k.startswith(LOCK_PREFIX) and k != key):
            with contextlib.suppress(MlflowException):  # a crashed writer's
                client.delete_registered_model_tag(name, stale)
        yield tags
    finally:
        client.delete_registered_model_tag(name, key)


def _float(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0  # unreadable: treated as stale


def _append_mirror(settings: Settings, line: str) -> None:
    """O_APPEND and fsync: concurrent writers never interleave within a line, and a crash
    loses at most the line being written."""
    path = audit_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------------- API
def record(
    settings: Settings,
    *,
    action: str,
    version: str | None,
    outcome: str,
    reasons: list[str] | None = None,
    actor: str | None = None,
    **extra,
) -> dict:
    """Append one decision to the chain in MLflow, then to the local mirror; returns it.

    Runs with the process's MLflow credentials: the service identity's, since only it may
    write the serving model's tags.
    """
    from training.identity import local_user

    body = json.loads(canonical({
        "at": datetime.now(UTC).isoformat(),
        "actor": actor or local_user(),
        "action": action,
        "model": settings.model_name,
        "version": version,
        "outcome": outcome,
        "reasons": list(reasons or []),
        "mirror": mirror_id(settings),
        **extra,
    }))  # through JSON once: what is hashed is what is read back
    body = _fit(body)
    name = settings.model_name
    client = _client(settings)
    with _PROCESS_LOCK:  # threads of one process queue here, not on MLflow
        with _chain_lock(client, name) as tags:
            stored = _entries(tags)
            seq = max(stored, default=-1) + 1
            prev = _hash_of(stored[seq - 1]) if seq else ""
            entry = {**body, "seq": seq, "prev": prev}
            entry["hash"] = entry_hash(entry)
            line = canonical(entry)
            key = f"{ENTRY_PREFIX}{seq:06d}"
            client.set_registered_model_tag(name, key, line)
            _append_mirror(settings, line)  # under the lock: mirror lines stay in seq order
        # the lock's guarantee has limits (LOCK_TTL_S): an overwrite is reported, not hidden
        if _tags(client, name).get(key) != line:
            raise AuditWriteError(f"audit entry {seq} of {name!r} was overwritten by another "
                                  "writer while written: run `twinops review history --verify`")
    return entry


def history(settings: Settings) -> list[dict]:
    """The entries in MLflow, by seq (unverified: see verified_history)."""
    out = []
    for seq, value in sorted(_entries(_tags(_client(settings), settings.model_name)).items()):
        try:
            out.append(json.loads(value))
        except json.JSONDecodeError:
            out.append({"seq": seq, "unreadable": value[:200]})
    return out


def verify(settings: Settings, *, mirror: bool = True) -> VerifyResult:
    """Check the MLflow chain link by link, then (`mirror`) the local mirror against it."""
    problems: list[str] = []
    stored = _entries(_tags(_client(settings), settings.model_name))
    entries: list[dict] = []
    by_seq: dict[int, dict] = {}
    expected_prev = ""
    for n in range(max(stored, default=-1) + 1):
        if n not in stored:
            problems.append(f"entry {n}: missing (removed) from MLflow")
            expected_prev = None  # the next link cannot be checked against a missing entry
            continue
        try:
            entry = json.loads(stored[n])
        except json.JSONDecodeError:
            problems.append(f"entry {n}: not JSON (edited)")
            expected_prev = None
            continue
        if not isinstance(entry, dict):
            problems.append(f"entry {n}: not an object (edited)")
            expected_prev = None
            continue
        entries.append(entry)
        by_seq[n] = entry
        if entry.get("seq") != n:
            problems.append(f"entry {n}: holds seq {entry.get('seq')} (moved or reordered)")
        if entry.get("hash") != entry_hash(entry):
            problems.append(f"entry {n}: hash does not match its content (edited)")
        if expected_prev is not None and entry.get("prev") != expected_prev:
            problems.append(f"entry {n}: prev does not link to entry {n - 1} "
                            "(removed, reordered or forged)")
        expected_prev = entry.get("hash")
    if mirror:
        problems += _mirror_problems(settings, by_seq)
    return VerifyResult(ok=not problems, problems=problems, entries=entries)


def _mirror_problems(settings: Settings, by_seq: dict[int, dict]) -> list[str]:
    """Every chained mirror line must equal MLflow's entry of its seq, and every MLflow
    entry written through this mirror must have its line. Lines written before the chain
    existed (no `hash`) are not evidence of anything and are skipped."""
    path = audit_path(settings)
    lines = path.read_text().splitlines() if path.exists() else []
    problems, seen = [], set()
    for i, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            problems.append(f"{path.name} line {i}: not JSON (edited)")
            continue
        if not isinstance(line, dict) or "hash" not in line:
            continue
        if line.get("model") != settings.model_name:
            continue  # one mirror holds every asset type's chain; each verifies its own
        seq = line.get("seq")
        seen.add(seq)
        if line["hash"] != entry_hash(line):
            problems.append(f"{path.name} line {i} (entry {seq}): hash does not match its "
                            "content (edited)")
        elif seq not in by_seq:
            problems.append(f"{path.name} line {i}: entry {seq} is not in MLflow "
                            "(removed there)")
        elif by_seq[seq] != line:
            problems.append(f"{path.name} line {i}: entry {seq} differs from MLflow's "
                            "(edited on one side)")
    mine = mirror_id(settings)
    for seq, entry in sorted(by_seq.items()):
        if entry.get("mirror") == mine and seq not in seen:
            problems.append(f"entry {seq}: written through this mirror but missing from "
                            f"{path.name} (line removed)")
    return problems


def verified_history(settings: Settings, *, mirror: bool = True) -> list[dict]:
    """The entries, only when the whole chain verifies: what review decisions rely on.

    `mirror=False` checks the MLflow chain alone: what serving relies on, so that an edit of
    one machine's local copy is reported by `verify` without taking the champion off line.
    """
    result = verify(settings, mirror=mirror)
    if not result.ok:
        raise AuditTampered(f"audit of {settings.model_name!r} does not verify: "
                            f"{result.problems[0]}"
                            + (f" (and {len(result.problems) - 1} more)"
                               if len(result.problems) > 1 else ""))
    return result.entries
