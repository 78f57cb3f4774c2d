"""Data versioning with DVC: the data dir's hash is the lineage key of every model.

    settings.data_dir (raw readings, events, quarantine, reference data)
        │ dvc add (Python API)          dvc push
        ▼                              ──────────►  settings.dvc_remote (local dir | s3://...)
    <data_dir>.dvc  (outs[0].md5 = "<md5>.dir")
        └─► data_hash() ─► the version `twinops ingest` reports

    train: [datastore.write_lock] track_data ─► read readings + events ─► DataVersion
           (released)                └─ md5 ─► tag dvc_data_hash     └─► data.rows,
                                                                       data.readings_sha256 tags

Lineage that is true: a model's dvc_data_hash must name a version that holds every row it
trained on, whatever wrote to data/ since the last `twinops ingest` (POST /ingest and
/feedback do not version). So training versions data/ itself, and reads its frame's
readings and events under the same write lock as the `dvc add`: no writer can slip rows in
between (version_and_read). track_data takes the lock too, so a version is never taken
halfway through a writer's rewrite of several files, and two `dvc add`s never race for
DVC's own repo lock. The cost: writers wait for the add + push (seconds on the local
remote; the add only re-hashes files that changed).

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

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

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
    Runs under datastore.write_lock (re-entrant: a caller that holds it keeps it), so the
    version is a state of data/ between two writes, never the middle of one.
    """
    from features.datastore import write_lock

    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    remote = settings.dvc_remote
    if "://" not in remote:
        Path(remote).mkdir(parents=True, exist_ok=True)
    with write_lock(settings), _quiet():
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


def frame_sha256(df: pd.DataFrame) -> str:
    """sha256 of a frame's content: column names, dtypes and every value, in row order.

    Row order counts: the raw store keeps readings sorted by (asset_id, cycle) and DVC
    restores the file byte for byte, so the readings of a restored version hash equal to
    what training read from it. The index does not count (pandas' per-row hashes,
    index=False).
    """
    import pandas as pd

    digest = hashlib.sha256()
    digest.update(json.dumps([[str(c), str(t)] for c, t in df.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class DataVersion:
    """A DVC version of data/ and the readings + events that were read as that version."""

    data_hash: str
    readings: pd.DataFrame
    events: pd.DataFrame

    def lineage_tags(self) -> dict[str, str]:
        """Tags that let anyone check the version holds what was read: `dvc pull` the
        data_hash, load data/raw/*.parquet, compare row counts and frame_sha256."""
        return {
            "data.rows": str(len(self.readings)),
            "data.readings_sha256": frame_sha256(self.readings),
            "data.events_rows": str(len(self.events)),
            "data.events_sha256": frame_sha256(self.events),
        }


def version_and_read(settings: Settings) -> DataVersion:
    """Version data/ (track_data) and read the raw readings and events, under one write lock.

    Why one lock around both: a row stored after the `dvc add` but before the read would
    be trained on without being in the version the model names. Every writer of data/
    (datastore appends, quarantine files, events) holds the same lock, so what is read
    here is exactly the content of the returned version.
    """
    from features import datastore

    with datastore.write_lock(settings):
        md5 = track_data(settings)
        return DataVersion(md5, datastore.load_readings(settings), datastore.load_events(settings))
