"""Append-only audit log of every review decision: proposals (with their gate results),
approvals, refusals, rejections and rollbacks.

    pipelines.review (propose / approve / reject / rollback) ─► audit.record()
        ─► state_dir/audit.jsonl (one JSON object a line)

One line per decision (who, when, what, why). Lines are appended with O_APPEND
and fsync'd, so concurrent writers never interleave within a line and a crash
loses at most the line being written — never earlier history.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import pydantic-settings, too slow for `twinops --help` to wait on
    from features.settings import Settings


def audit_path(settings: Settings):
    return settings.state_dir / "audit.jsonl"


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
    entry = {
        "at": datetime.now(UTC).isoformat(),
        "actor": actor or getpass.getuser(),
        "action": action,
        "model": settings.model_name,
        "version": version,
        "outcome": outcome,
        "reasons": list(reasons or []),
        **extra,
    }
    path = audit_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(entry, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    return entry


def history(settings: Settings) -> list[dict]:
    path = audit_path(settings)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
