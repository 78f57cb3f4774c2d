"""The hash-chained audit on an embedded sqlite MLflow: links, and what verify catches.

Each tampering is done the way a user with write access would: a plain MLflow client
setting or deleting the serving model's tags, or an edit of the local audit.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from features.settings import get_settings
from pipelines import audit

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "none.yaml"))
    return get_settings(state_dir=tmp_path / "state")


def _chain(settings, n=4) -> list[dict]:
    return [audit.record(settings, action="propose", version=str(i), outcome="awaiting",
                         reasons=[f"reason {i}"], actor="svc", evidence=f"r{i}.html")
            for i in range(n)]


def _key(seq: int) -> str:
    return f"{audit.ENTRY_PREFIX}{seq:06d}"


def _tags(settings) -> dict[str, str]:
    return audit._tags(audit._client(settings), settings.model_name)


def _set(settings, seq: int, value: str) -> None:
    audit._client(settings).set_registered_model_tag(settings.model_name, _key(seq), value)


def _problems(settings) -> list[str]:
    result = audit.verify(settings)
    assert result.ok is (not result.problems)
    return result.problems


def test_entries_are_chained_in_mlflow_and_mirrored_locally(settings):
    written = _chain(settings, 3)  # the serving model did not exist: created
    tags = _tags(settings)
    entries = audit.history(settings)
    assert entries == written
    assert [e["seq"] for e in entries] == [0, 1, 2]
    assert entries[0]["prev"] == "" and entries[1]["prev"] == entries[0]["hash"]
    assert entries[2]["prev"] == entries[1]["hash"]
    for e in entries:
        assert e["hash"] == audit.entry_hash(e) and len(e["hash"]) == 64
        assert tags[_key(e["seq"])] == audit.canonical(e)
    assert not [k for k in tags if k.startswith(audit.LOCK_PREFIX)]  # locks released
    mirror = audit.audit_path(settings).read_text().splitlines()
    assert mirror == [audit.canonical(e) for e in entries]
    result = audit.verify(settings)
    assert result.ok and result.problems == [] and result.entries == entries
    assert audit.verified_history(settings) == entries


def test_an_edited_entry_is_found_and_verified_history_refuses(settings):
    _chain(settings)
    entry = json.loads(_tags(settings)[_key(1)])
    _set(settings, 1, audit.canonical({**entry, "outcome": "approved"}))  # hash kept
    problems = _problems(settings)
    assert "entry 1: hash does not match its content (edited)" in problems
    assert any("entry 1 differs from MLflow's" in p for p in problems)  # the mirror too
    with pytest.raises(audit.AuditTampered, match="entry 1: hash does not match"):
        audit.verified_history(settings)


def test_an_entry_re_hashed_after_its_edit_breaks_the_next_link(settings):
    _chain(settings)
    entry = json.loads(_tags(settings)[_key(1)])
    forged = {**entry, "outcome": "approved"}
    forged["hash"] = audit.entry_hash(forged)
    _set(settings, 1, audit.canonical(forged))
    assert "entry 2: prev does not link to entry 1 (removed, reordered or forged)" in (
        _problems(settings))


def test_a_removed_entry_is_a_gap(settings):
    _chain(settings)
    audit._client(settings).delete_registered_model_tag(settings.model_name, _key(1))
    problems = _problems(settings)
    assert problems[0] == "entry 1: missing (removed) from MLflow"
    assert any("entry 1 is not in MLflow" in p for p in problems)


def test_two_swapped_entries_are_found(settings):
    _chain(settings)
    tags = _tags(settings)
    _set(settings, 1, tags[_key(2)])
    _set(settings, 2, tags[_key(1)])
    problems = _problems(settings)
    assert "entry 1: holds seq 2 (moved or reordered)" in problems
    assert "entry 1: prev does not link to entry 0 (removed, reordered or forged)" in problems


def test_a_forged_or_cut_tail_disagrees_with_the_mirror(settings):
    _chain(settings)
    last = json.loads(_tags(settings)[_key(3)])
    forged = {**last, "actor": "someone else"}
    forged["hash"] = audit.entry_hash(forged)  # a consistent chain on its own
    _set(settings, 3, audit.canonical(forged))
    assert _problems(settings) == [
        "audit.jsonl line 4: entry 3 differs from MLflow's (edited on one side)"]
    audit._client(settings).delete_registered_model_tag(settings.model_name, _key(3))
    assert _problems(settings) == ["audit.jsonl line 4: entry 3 is not in MLflow (removed there)"]


def test_an_edited_local_line_is_found(settings):
    _chain(settings)
    path = audit.audit_path(settings)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace('"actor":"svc"', '"actor":"mallory"')
    path.write_text("\n".join(lines) + "\n")
    assert _problems(settings) == [
        "audit.jsonl line 2 (entry 1): hash does not match its content (edited)"]


def test_a_deleted_local_line_is_found(settings):
    _chain(settings)
    path = audit.audit_path(settings)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    assert _problems(settings) == [
        "entry 2: written through this mirror but missing from audit.jsonl (line removed)"]


def test_entries_written_elsewhere_and_pre_chain_lines_are_not_problems(settings):
    """Another state dir's entries are not in this mirror; old unchained lines prove
    nothing: neither is reported (each mirror vouches only for its own lines)."""
    other = get_settings(state_dir=settings.state_dir.parent / "other",
                         mlflow_tracking_uri=settings.tracking_uri)
    audit.record(settings, action="propose", version="1", outcome="awaiting")
    audit.record(other, action="approve", version="1", outcome="champion")
    path = audit.audit_path(settings)
    path.write_text('{"at": "2025-01-01", "action": "gate"}\n' + path.read_text())
    assert [e["action"] for e in audit.history(settings)] == ["propose", "approve"]
    assert _problems(settings) == [] and _problems(other) == []


def test_long_reasons_are_cut_to_fit_one_tag(settings):
    entry = audit.record(settings, action="propose", version="1", outcome="rejected",
                         reasons=["x" * 50_000, "y" * 3000])
    assert len(audit.canonical(entry)) <= audit.MAX_ENTRY_CHARS
    assert entry["reasons"][0].startswith("xxx") and entry["reasons"][0].endswith("...")
    assert audit.verify(settings).ok


def test_threads_of_one_process_get_consecutive_seqs(settings):
    audit.record(settings, action="propose", version="0", outcome="awaiting")  # model exists
    threads = [threading.Thread(target=audit.record, args=(settings,),
                                kwargs={"action": "reject", "version": str(i),
                                        "outcome": "rejected"}) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e["seq"] for e in audit.history(settings)] == list(range(7))
    assert audit.verify(settings).ok


def test_two_processes_writing_at_once_lose_no_entry(settings):
    """The lock tags, not the in-process lock, keep two processes off one seq."""
    audit.record(settings, action="propose", version="0", outcome="awaiting")
    script = ("import sys; from pathlib import Path; from features.settings import "
              "get_settings; from pipelines import audit\n"
              "s = get_settings(state_dir=Path(sys.argv[1]))\n"
              "for i in range(5): audit.record(s, action='reject', version=sys.argv[2], "
              "outcome='rejected')\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(settings.state_dir), name],
                              env=env, cwd=ROOT) for name in ("a", "b")]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    entries = audit.history(settings)
    assert [e["seq"] for e in entries] == list(range(11))
    assert sorted(e["version"] for e in entries[1:]) == ["a"] * 5 + ["b"] * 5
    assert audit.verify(settings).ok


def test_a_live_lock_of_another_writer_is_waited_for_and_a_stale_one_ignored(settings):
    import time

    audit.record(settings, action="propose", version="0", outcome="awaiting")
    client = audit._client(settings)
    name = settings.model_name
    client.set_registered_model_tag(name, f"{audit.LOCK_PREFIX}crashed", "1.0")  # 1970: stale
    client.set_registered_model_tag(name, f"{audit.LOCK_PREFIX}other", f"{time.time():.3f}")
    done = threading.Event()
    writer = threading.Thread(target=lambda: (audit.record(
        settings, action="reject", version="1", outcome="rejected"), done.set()))
    writer.start()
    assert not done.wait(1.0)  # held back by the other writer's live lock
    client.delete_registered_model_tag(name, f"{audit.LOCK_PREFIX}other")
    assert done.wait(30)
    writer.join()
    assert [e["seq"] for e in audit.history(settings)] == [0, 1]
    assert not [k for k in _tags(settings) if k.startswith(audit.LOCK_PREFIX)]


def test_an_entry_overwritten_while_written_is_reported(settings, monkeypatch):
    """Past the lock's guarantee (a writer stalled beyond LOCK_TTL_S), an overwrite of
    the entry just written raises, and verify shows it against the mirror."""
    audit.record(settings, action="propose", version="0", outcome="awaiting")
    client = audit._client(settings)
    real_set = type(client).set_registered_model_tag

    def set_then_overwritten(self, name, key, value):
        real_set(self, name, key, value)
        if key == _key(1):  # the other writer's entry 1 lands right after ours
            real_set(self, name, key, audit.canonical({"seq": 1, "by": "other"}))

    monkeypatch.setattr(type(client), "set_registered_model_tag", set_then_overwritten)
    with pytest.raises(audit.AuditWriteError, match="entry 1 .* overwritten"):
        audit.record(settings, action="reject", version="1", outcome="rejected")
    monkeypatch.undo()
    assert any("line 2: entry 1 differs from MLflow's" in p for p in _problems(settings))


def test_review_history_verify_exit_codes(settings):
    from pipelines.cli import app

    _chain(settings, 2)
    args = ["--state-dir", str(settings.state_dir), "review", "history"]
    saved = dict(os.environ)  # the CLI's runtime.prepare points library homes into state
    try:
        plain = CliRunner().invoke(app, args)
        intact = CliRunner().invoke(app, [*args, "--verify"])
        audit._client(settings).delete_registered_model_tag(settings.model_name, _key(0))
        tampered = CliRunner().invoke(app, [*args, "--verify"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert plain.exit_code == 0, plain.output
    assert "#0" in plain.output and "#1" in plain.output and "reason 1" in plain.output
    assert intact.exit_code == 0, intact.output
    assert "2 entries, chain and mirror verify" in intact.output
    assert tampered.exit_code == 1, tampered.output
    assert "TAMPERED: entry 0: missing (removed) from MLflow" in tampered.output
