"""Data versioning with DVC: the data dir's hash is the lineage key of every model.

    settings.data_dir (raw readings, events, quarantine, reference data)
        │ dvc add (Python API)          dvc push
        ▼                              ──────────►  settings.dvc_remote (local dir | s3://...)
    <data_dir>.dvc  (outs[0].md5 = "<md5>.dir")
        └─► data_hash() ─► tag dvc_data_hash on model versions

The DVC repo lives in data_dir's parent: for the real project that is the git
root (so `.dvc/` and `data.dvc` sit at the top level and `/data` is git-ignored
by `dvc add`); anywhere else (tests, scratch runs in a tmp dir) a no-SCM DVC repo
is initialised there. An existing DVC repo further up is reused rather than
nesting a second one. Analytics and autostage are off: a pipeline must never
phone home or silently `git add` files (only `dvc init` itself, once, stages its
own .dvc/config, .dvc/.gitignore and .dvcignore in git — fixed dvc behaviour);
nothing is ever committed here.

dvc is imported inside the functions (it is slow to import).
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from features.settings import Settings

REMOTE_NAME = "local"


def dvc_file(settings: Settings) -> Path:
    """The pointer file `dvc add` writes next to the data dir (e.g. data.dvc)."""
    data_dir = Path(settings.data_dir)
    return data_dir.parent / f"{data_dir.name}.dvc"


def _find_dvc_root(start: Path) -> Path | None:
    for d in [start, *start.parents]:
        if (d / ".dvc").is_dir():
            return d
    return None


@contextmanager
def _quiet():
    """DVC logs progress at INFO; keep pipeline output readable."""
    import dvc.repo  # noqa: F401  - importing dvc configures its logger; override after

    logger = logging.getLogger("dvc")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _open_repo(root: Path):
    from dvc.repo import Repo

    if _find_dvc_root(root) is None:
        Repo.init(str(root), no_scm=not (root / ".git").exists()).close()
    return Repo(str(_find_dvc_root(root)))


def _configure(repo, remote_url: str) -> None:
    """Project-wide switches go to .dvc/config (committed); the remote to .dvc/config.local.

    The remote URL comes from Settings and differs per machine and state dir
    (the embedded default lives under state_dir), so it belongs in DVC's
    per-checkout, git-ignored config level rather than in the committed file.
    """
    with repo.config.edit() as conf:
        conf["core"]["analytics"] = False
        conf["core"]["autostage"] = False
    with repo.config.edit(level="local") as conf:
        conf["core"]["remote"] = REMOTE_NAME
        conf["remote"][REMOTE_NAME] = {"url": remote_url}


def track_data(settings: Settings) -> str:
    """`dvc add` the data dir, push it to the default remote, return its md5.

    Idempotent: re-adding unchanged data gives the same hash and pushes nothing.
    """
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    remote = settings.dvc_remote
    if "://" not in remote:
        Path(remote).mkdir(parents=True, exist_ok=True)
    with _quiet():
        repo = _open_repo(data_dir.parent)
        try:
            _configure(repo, remote)
            repo.add(str(data_dir))
            repo.push(remote=REMOTE_NAME)
        finally:
            repo.close()
    md5 = data_hash(settings)
    if md5 is None:  # pragma: no cover - dvc add always writes it
        raise RuntimeError(f"dvc add did not write {dvc_file(settings)}")
    return md5


def data_hash(settings: Settings) -> str | None:
    """md5 of the data dir as recorded in its .dvc file, or None if not tracked."""
    import yaml

    path = dvc_file(settings)
    if not path.exists():
        return None
    meta = yaml.safe_load(path.read_text()) or {}
    outs = meta.get("outs") or []
    return outs[0].get("md5") if outs else None
