"""Lineage that is true: a model's dvc_data_hash restores exactly the readings it trained on.

    ingest_flow(simulator, 10 assets)            ─► data/ versioned (v0)
    POST /ingest + /feedback code path (3 more)   ─► stored, not versioned
    features_flow ─► train_flow ─────────────────► versions data/ (v1) under the write lock,
        └ a concurrent /ingest (3 "late" assets)    reads, trains; the late rows wait for the lock
    ingest_flow(simulator-live)                   ─► data/ moves on (v2)
    fresh workspace, same DVC remote, data.dvc = the model's hash ─► dvc pull
        ─► restored readings == what train_flow read: same rows, same sha256

On the code before this test, train_flow read data.dvc after training: v0, without the
/ingest rows it trained on (the restored row count differs).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import yaml

from tests.integration.conftest import state_env

pytestmark = pytest.mark.integration

@pytest.fixture
def lineage_env(tmp_path, monkeypatch):
    env = state_env(tmp_path, n_assets=10)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return tmp_path


def _records(readings) -> list[dict]:
    return [
        {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in row.items()}
        for row in readings.to_dict("records")
    ]


def _no_push(settings, features) -> None:
    """The online push is not under test (and the fleet's features are rebuilt offline)."""


def test_model_hash_restores_exactly_the_readings_it_trained_on(lineage_env, monkeypatch):
    from features import datastore, versioning
    from features.settings import get_settings
    from features.sources.simulator import simulate_fleet, simulate_live
    from features.versioning import frame_sha256
    from pipelines.flows import features_flow, ingest_flow, train_flow
    from serving.ingest import ingest_readings, record_events
    from training.registry import version_tags

    settings = get_settings()
    first = ingest_flow("simulator", settings)

    # Rows stored through the service's path, which does not version data/.
    api_readings, api_events = simulate_fleet(3, seed=11, prefix="api")
    assert ingest_readings(settings, _records(api_readings), push=_no_push).appended
    assert record_events(settings, _records(api_events)).appended == 3
    features_flow(settings)
    read_by_training = datastore.load_readings(settings)  # nothing else writes now
    assert len(read_by_training) > first.rows_appended

    # A concurrent /ingest right after training versions data/: it must wait for the
    # training read, or its rows would be trained on without being in the version.
    late_readings, _ = simulate_live(3, seed=23, prefix="late")
    late = {}
    real_track = versioning.track_data

    def track_then_race(s):
        md5 = real_track(s)
        writer = threading.Thread(
            target=lambda: late.update(
                r=ingest_readings(s, _records(late_readings), push=_no_push)
            )
        )
        writer.start()
        writer.join(timeout=3)  # unlocked, it would finish and be read by training
        late["thread"], late["held_off"] = writer, writer.is_alive()
        return md5

    with monkeypatch.context() as patch:
        patch.setattr(versioning, "track_data", track_then_race)
        trained = train_flow(settings)
    assert late["held_off"], "the write lock did not hold /ingest off the training read"
    late["thread"].join(timeout=60)
    assert late["r"].appended == len(late_readings)  # stored, after the training read

    ingest_flow("simulator-live", settings)  # the working data moves on
    # ... and rows stored since without a new version: the review's evidence versions
    # what it evaluates on, so its report names a version that holds them
    assert ingest_readings(settings, _records(simulate_live(2, seed=29, prefix="rev")[0]),
                           push=_no_push).appended
    from pipelines.evidence import gather

    before = versioning.data_hash(settings)
    evaluated = gather(settings, trained.version).data_hash
    assert evaluated == versioning.data_hash(settings) != before

    tags = version_tags(settings, trained.version, model=settings.candidates_model_name)
    recorded = tags["dvc_data_hash"]
    assert recorded == trained.data_hash
    assert recorded != versioning.data_hash(settings)  # data.dvc now names a newer version
    now = datastore.load_readings(settings)
    assert len(now) > len(read_by_training)

    # A second workspace: only the DVC config (same remote) and a data.dvc naming the hash.
    workspace = Path(settings.data_dir).parent
    clone = lineage_env / "clone"
    (clone / ".dvc").mkdir(parents=True)
    for name in ("config", "config.local"):
        shutil.copy(workspace / ".dvc" / name, clone / ".dvc" / name)
    (clone / "data.dvc").write_text(
        yaml.safe_dump({"outs": [{"md5": recorded, "hash": "md5", "path": "data"}]})
    )
    from dvc.repo import Repo

    with Repo(str(clone)) as repo:
        repo.pull()
    restored = datastore.load_readings(get_settings(data_dir=clone / "data"))

    assert len(restored) == len(read_by_training)
    assert frame_sha256(restored) == frame_sha256(read_by_training)
    assert tags["data.rows"] == str(len(restored))
    assert tags["data.readings_sha256"] == frame_sha256(restored)
    assert set(restored["asset_id"].str.split("-").str[0]) == {"sim", "api"}
