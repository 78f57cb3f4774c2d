"""Feast definitions of twinops: entity, sources, feature view, feature service.

    offline parquet (write_offline_features) ─► FileSource asset_window_source
                                                      ▲ batch source of
    live feature rows (push_features) ──────► PushSource asset_window_push
                                                      │
                              FeatureView asset_window_features (entity: asset)
                                                      │
                              FeatureService rul_model  ─► training_frame / online_features

Written like `feast init`'s template, but the objects are built by `build()` so
that each run (each state dir, each TTL) gets its own copies: tests and runs
with different TWINOPS_STATE_DIR must never share a parquet path. The
module-level objects at the bottom exist for the `feast` CLI, which collects
module-level objects; they read TWINOPS_FEAST_DIR / TWINOPS_FEAST__TTL_DAYS.

Feature dtypes are Float64 (not Float32): the online store must hand back the
exact values the transform computed, so that online and offline features agree
bit for bit (see features.transforms).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from features.contract import ASSET_ID, CYCLE, TIMESTAMP
from features.transforms import FEATURE_COLUMNS

#: Name of the FeatureService the RUL model reads (recorded on every model version).
FEATURE_SERVICE_NAME = "rul_model"
FEATURE_VIEW_NAME = "asset_window_features"
PUSH_SOURCE_NAME = "asset_window_push"
#: Offline parquet, relative to the feast dir (settings.feast_dir).
OFFLINE_RELPATH = "offline/asset_window_features.parquet"


@dataclass(frozen=True)
class Definitions:
    asset: Entity
    source: FileSource
    push_source: PushSource
    feature_view: FeatureView
    feature_service: FeatureService

    def objects(self) -> list:
        """Everything to hand to FeatureStore.apply, in dependency order."""
        return [self.asset, self.source, self.push_source, self.feature_view, self.feature_service]


def build(offline_path: str, ttl: timedelta) -> Definitions:
    """Create the definitions for one feast dir (absolute `offline_path`) and TTL."""
    # An entity is the key features are looked up by: one monitored asset
    # (an engine, a pump...). Its join key is the contract's asset_id column.
    asset = Entity(
        name="asset",
        join_keys=[ASSET_ID],
        value_type=ValueType.STRING,
        description="A monitored asset (e.g. one turbofan engine).",
    )

    # Batch source: the parquet file of window features written by
    # features.store.write_offline_features. `timestamp` is the reading time the
    # feature row describes; point-in-time joins never look past it.
    source = FileSource(
        name="asset_window_source",
        path=offline_path,
        timestamp_field=TIMESTAMP,
        description="Window features of validated readings (offline parquet).",
    )

    # Push source: lets serving/ingest push freshly computed feature rows straight
    # into the online store (and optionally the offline store) without waiting
    # for a batch materialization. Its batch_source is the parquet above, so
    # historical retrieval and materialization read the same data.
    push_source = PushSource(name=PUSH_SOURCE_NAME, batch_source=source)

    # The feature view: the schema of window features of an asset. Its source is
    # the push source (so both pushes and materialization feed it). ttl bounds how
    # old a feature row may be and still be joined to a training timestamp.
    feature_view = FeatureView(
        name=FEATURE_VIEW_NAME,
        entities=[asset],
        ttl=ttl,
        schema=[
            Field(name=ASSET_ID, dtype=String),
            *[Field(name=c, dtype=Int64 if c == CYCLE else Float64) for c in FEATURE_COLUMNS],
        ],
        online=True,
        source=push_source,
        tags={"owner": "twinops", "transform": "features.transforms.window_features"},
    )

    # A feature service groups the features one model consumes; its name is
    # recorded on the registered model, so a model version always knows which
    # features (and transform) it was trained on.
    feature_service = FeatureService(
        name=FEATURE_SERVICE_NAME,
        features=[feature_view],
        description="Inputs of the physics-informed RUL model.",
    )
    return Definitions(asset, source, push_source, feature_view, feature_service)


# ---- module-level objects for the `feast` CLI (feast apply collects these) ----
_defs = build(
    offline_path=os.path.join(os.environ.get("TWINOPS_FEAST_DIR", "."), OFFLINE_RELPATH),
    ttl=timedelta(days=int(os.environ.get("TWINOPS_FEAST__TTL_DAYS", "3650"))),
)
asset = _defs.asset
asset_window_source = _defs.source
asset_window_push = _defs.push_source
asset_window_features = _defs.feature_view
rul_model = _defs.feature_service
