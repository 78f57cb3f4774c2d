"""DVC tracking of the data dir in a tmp project (never the real data.dvc)."""

import yaml

from features.settings import get_settings
from features.versioning import data_hash, dvc_file, track_data


def test_track_push_and_hash(tmp_path):
    s = get_settings(state_dir=tmp_path / "state", data_dir=tmp_path / "proj" / "data")
    assert data_hash(s) is None
    (s.raw_dir).mkdir(parents=True)
    (s.raw_dir / "readings.csv").write_text("asset_id,cycle\nA,1\n")
    h1 = track_data(s)
    assert h1.endswith(".dir") and len(h1) == 36
    assert dvc_file(s) == tmp_path / "proj" / "data.dvc"
    assert yaml.safe_load(dvc_file(s).read_text())["outs"][0]["md5"] == h1 == data_hash(s)
    assert (tmp_path / "proj" / ".dvc").is_dir()
    # Pushed to the local remote (content-addressed by md5).
    remote = tmp_path / "state" / "dvc-remote"
    assert (remote / "files" / "md5" / h1[:2] / h1[2:]).exists()
    config = (tmp_path / "proj" / ".dvc" / "config").read_text()
    local = (tmp_path / "proj" / ".dvc" / "config.local").read_text()
    # project switches are committed; the machine-specific remote stays in config.local
    assert "analytics = False" in config and str(remote) not in config
    assert str(remote) in local
    # Unchanged data: same hash. Changed data: new hash.
    assert track_data(s) == h1
    (s.raw_dir / "more.csv").write_text("x\n")
    h2 = track_data(s)
    assert h2 != h1 and data_hash(s) == h2


def test_project_root_in_git_repo_gitignores_data(tmp_path):
    """Like the real project: a git root gets .dvc/ + data.dvc and ignores /data."""
    import shutil
    import subprocess

    import pytest

    if shutil.which("git") is None:
        pytest.skip("git not installed")
    proj = tmp_path / "proj"
    proj.mkdir()
    subprocess.run(["git", "init", "-q", str(proj)], check=True)
    s = get_settings(state_dir=tmp_path / "state", data_dir=proj / "data")
    s.raw_dir.mkdir(parents=True)
    (s.raw_dir / "r.csv").write_text("a\n")
    h = track_data(s)
    assert data_hash(s) == h
    assert "/data" in (proj / ".gitignore").read_text().split()
    assert "no_scm" not in (proj / ".dvc" / "config").read_text()
    # `dvc init` stages its own config files (its fixed behaviour), but with
    # autostage off, `dvc add` stages neither data.dvc nor .gitignore; no commit.
    staged = subprocess.run(
        ["git", "-C", str(proj), "diff", "--cached", "--name-only"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "data.dvc" not in staged and ".gitignore" not in staged
    log = subprocess.run(
        ["git", "-C", str(proj), "log", "--oneline"], capture_output=True, text=True
    ).stdout
    assert log.strip() == ""
