"""`twinops serve` with no champion anywhere: one clear error, never a server that crash-loops."""

from __future__ import annotations

import os

from typer.testing import CliRunner

from pipelines.cli import app


def test_serve_without_any_champion_exits_2_naming_the_way_out(monkeypatch, tmp_path):
    execs: list = []
    monkeypatch.setattr(os, "execve", lambda *a: execs.append(a))
    monkeypatch.setenv("TWINOPS_CONFIG", str(tmp_path / "none.yaml"))
    saved = dict(os.environ)  # the CLI's runtime.prepare points library homes into state
    try:
        result = CliRunner().invoke(app, ["--state-dir", str(tmp_path / "state"), "serve"])
    finally:
        os.environ.clear()
        os.environ.update(saved)
    assert result.exit_code == 2, result.output
    assert "no asset type has a 'champion'" in result.output and "promote" in result.output
    assert execs == []
