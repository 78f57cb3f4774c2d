"""A state dir (and its data dir) moved or copied elsewhere keeps working from there.

    build:  ingest_flow ─► features_flow ─► train_flow ─► champion = v1   (in built/)
    copy:   copytree(built ─► copy/), built/ renamed away: the copy loads the champion and
            joins features (any read of built/ would fail); built/ back: still its own paths
    move:   rename(built ─► moved/): champion, features, and a retrain whose run and model
            land under moved/

On the code before features.relocate the copy's model download read
model_versions.storage_location under built/ (gone: OSError) and its point-in-time join
read built/'s parquet (gone: an IO error; still there: the original's rows, in silence).
"""

from __future__ import annotations

import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pandas as pd
import pytest

from tests.integration.conftest import in_env, state_env

pytestmark = pytest.mark.integration


def _settings(root: Path):
    from features.settings import get_settings

    with in_env(state_env(root, n_assets=8)):
        return get_settings()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from pipelines.flows import features_flow, ingest_flow, train_flow
    from tests.integration.conftest import make_champion

    root = tmp_path_factory.mktemp("move") / "built"
    settings = _settings(root)
    ingest_flow("simulator", settings)
    features_flow(settings)
    make_champion(settings, train_flow(settings).version)
    return root


def _mentions(db: Path, root: Path) -> list[str]:
    """table.column of every text value in the sqlite db that names a path under root."""
    hits = []
    with closing(sqlite3.connect(db)) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for column in [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]:
                n = conn.execute(f'SELECT count(*) FROM "{table}" WHERE instr("{column}", ?)',
                                 (f"{root}/",)).fetchone()[0]
                hits += [f"{table}.{column}"] * bool(n)
    return hits


def _works_from(root: Path) -> None:
    """The champion loads, and Feast's sources and join read this root's files."""
    from features import store
    from features.store import feature_view_name, offline_path
    from training.registry import load_by_alias

    settings = _settings(root)
    champion = load_by_alias(settings, "champion")
    assert champion.version == "1"
    feast = store.get_store(settings)
    view = feast.get_feature_view(feature_view_name(settings.asset_type))
    assert view.batch_source.path == str(offline_path(settings))
    assert str(offline_path(settings)).startswith(f"{root}/")
    offline = pd.read_parquet(offline_path(settings))
    joined = store.training_frame(settings, offline[["asset_id", "timestamp"]].head(50), feast)
    assert joined["cycle"].tolist() == offline["cycle"].head(50).tolist()


def test_a_copy_works_without_the_original_and_leaves_it_alone(built, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    away = built.with_name("built-away")
    built.rename(away)  # any read of the original's paths fails from here on
    try:
        _works_from(copy)
        assert _mentions(copy / "state" / "mlflow.db", built) == []
        assert (copy / "state" / "ROOT").read_text().strip() == str(copy / "state")
    finally:
        away.rename(built)
    _works_from(built)  # the original's stores were not rewritten by the copy
    assert (built / "state" / "ROOT").read_text().strip() == str(built / "state")


def test_a_moved_state_trains_and_serves_from_its_new_place(built, tmp_path):
    from pipelines.flows import train_flow
    from training.registry import _client, load_version

    moved = tmp_path / "moved"
    built.rename(moved)
    _works_from(moved)
    settings = _settings(moved)
    trained = train_flow(settings)
    run = _client(settings).get_run(trained.run_id)
    assert run.info.artifact_uri.startswith(settings.artifact_root.as_uri() + "/")
    cand = settings.candidates_model_name
    assert load_version(settings, trained.version, model=cand).version == trained.version
    assert _mentions(moved / "state" / "mlflow.db", built) == []
