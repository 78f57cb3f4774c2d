"""Feast round trip on real local stores: offline parquet + SQLite online, under tmp_path.

Offline (point-in-time historical retrieval) and online (after materialize, and
after push) must hand the model the same numbers for the same asset and time.
"""

import numpy as np
import pandas as pd
import pytest

from features.settings import get_settings
from features.sources.simulator import simulate_fleet, simulate_live
from features.transforms import latest_window_features, window_features
from tests.layout import FEATURE_COLUMNS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from features import store as S

    tmp = tmp_path_factory.mktemp("feast")
    settings = get_settings(state_dir=tmp / "state", data_dir=tmp / "data")
    readings, _ = simulate_fleet(5, seed=21)
    feats = window_features(readings, settings.type)
    S.write_offline_features(settings, feats)
    store = S.apply_definitions(settings)
    window = S.materialize(settings, store=store)
    return S, settings, store, readings, feats, window


def test_state_lives_under_feast_dir(env):
    S, settings, store, *_ = env
    fd = settings.feast_dir
    assert (fd / "registry.db").exists() and (fd / "online_store.db").exists()
    assert S.offline_path(settings).is_relative_to(fd)
    assert store.config.project == settings.feast.project
    fv = store.get_feature_view("turbofan_window_features")
    assert [f.name for f in fv.features] == ["cycle", *FEATURE_COLUMNS]  # key, then inputs
    assert fv.ttl.days == settings.feast.ttl_days
    assert fv.tags["asset_type"] == "turbofan"
    svc = store.get_feature_service(S.feature_service_name("turbofan"))
    assert svc.name == "rul_turbofan"
    assert S.offline_path(settings).name == "turbofan_window_features.parquet"


def test_materialize_window_covers_offline_data(env):
    _, _, _, _, feats, (start, end) = env
    assert start == feats["timestamp"].min().to_pydatetime()
    assert end > feats["timestamp"].max().to_pydatetime()


def test_online_equals_offline_for_same_asset_and_time(env):
    S, settings, store, readings, feats, _ = env
    ids = ["sim-0003", "ghost", "sim-0001"]
    online = S.online_features(settings, ids, store=store)
    assert online["asset_id"].tolist() == ids
    assert online["found"].tolist() == [True, False, True]
    assert online.loc[1, FEATURE_COLUMNS].isna().all() and pd.isna(
        online.loc[1, "feature_timestamp"]
    )

    last = feats.groupby("asset_id").tail(1).set_index("asset_id")
    ent = pd.DataFrame(
        {
            "asset_id": ["sim-0003", "sim-0001"],
            "timestamp": last.loc[["sim-0003", "sim-0001"], "timestamp"].to_numpy(),
        }
    )
    offline = S.training_frame(settings, ent, store=store)
    on = online[online["found"]].reset_index(drop=True)
    np.testing.assert_array_equal(
        on[FEATURE_COLUMNS].to_numpy(float), offline[FEATURE_COLUMNS].to_numpy(float)
    )
    # ... and both equal the online transform computed from raw readings.
    direct = latest_window_features(readings, settings.type).set_index("asset_id")
    np.testing.assert_array_equal(
        direct.loc[["sim-0003", "sim-0001"], FEATURE_COLUMNS].to_numpy(float),
        on[FEATURE_COLUMNS].to_numpy(float),
    )
    assert (on["feature_timestamp"] == ent["timestamp"]).all()


def test_point_in_time_join(env):
    S, settings, store, _, feats, _ = env
    a = feats[feats["asset_id"] == "sim-0002"].reset_index(drop=True)
    t10 = a.loc[10, "timestamp"]
    ent = pd.DataFrame(
        {
            "asset_id": ["sim-0002", "sim-0002", "sim-0002"],
            "timestamp": [
                t10,
                t10 + pd.Timedelta(minutes=59),
                a.loc[0, "timestamp"] - pd.Timedelta(hours=1),
            ],
            "cycle": [11, 11, 0],  # a label frame's cycle must not clobber the feature
            "rul": [1.0, 2.0, 3.0],
        }
    )
    out = S.training_frame(settings, ent, store=store)
    assert out["rul"].tolist() == [1.0, 2.0, 3.0]  # entity order and columns kept
    assert out["entity_cycle"].tolist() == [11, 11, 0]
    assert out.loc[0, "cycle"] == 11 and out.loc[1, "cycle"] == 11  # never the future row
    np.testing.assert_array_equal(
        out.loc[0, FEATURE_COLUMNS].to_numpy(float), a.loc[10, FEATURE_COLUMNS].to_numpy(float)
    )
    assert out.loc[2, FEATURE_COLUMNS].isna().all()  # before the first reading


def test_push_reaches_online_and_offline(env):
    S, settings, store, *_ = env
    live, _ = simulate_live(2, seed=99, prefix="pushed")
    fresh = latest_window_features(live, settings.type)
    S.push_features(settings, fresh, store=store)
    online = S.online_features(settings, ["pushed-0001", "pushed-0002"], store=store)
    assert online["found"].all()
    np.testing.assert_array_equal(
        online[FEATURE_COLUMNS].to_numpy(float), fresh[FEATURE_COLUMNS].to_numpy(float)
    )
    off = pd.read_parquet(S.offline_path(settings))
    assert set(fresh["asset_id"]) <= set(off["asset_id"])
    hist = S.training_frame(settings, fresh[["asset_id", "timestamp"]], store=store)
    np.testing.assert_array_equal(
        hist[FEATURE_COLUMNS].to_numpy(float), fresh[FEATURE_COLUMNS].to_numpy(float)
    )
    # Re-pushing the same rows is idempotent offline.
    S.push_features(settings, fresh, store=store)
    assert len(pd.read_parquet(S.offline_path(settings))) == len(off)


def test_redis_config_selected_by_settings(tmp_path):
    from features.store import repo_config

    s = get_settings(
        state_dir=tmp_path,
        feast={"online_store": "redis", "redis_connection": "redis.example:6380"},
    )
    cfg = repo_config(s)
    assert cfg.online_store.type == "redis"
    assert cfg.online_store.connection_string == "redis.example:6380"
    assert str(cfg.registry.path).startswith(str(s.feast_dir))
