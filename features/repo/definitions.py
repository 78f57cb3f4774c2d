"""Feast definitions of twinops, one set per asset type: sources, feature view, service.

    offline parquet (write_offline_features) ─► FileSource <type>_window_source
                                                      ▲ batch source of
    live feature rows (push_features) ──────► PushSource <type>_window_push
                                                      │
                              FeatureView <type>_window_features (entity: asset)
                                                      │
                              FeatureService rul_<type>  ─► training_frame / online_features

Written like `feast init`'s template, but the objects are built by `build()` so
that each run (each state dir, each TTL) and each asset type gets its own copies:
tests and runs with different TWINOPS_STATE_DIR must never share a parquet path, and
the schema of a view is its type's feature list (features.transforms.feature_columns).
All types share the entity `asset`: an asset id names one asset, whatever its type.
`twinops features` applies them through the SDK (features.store.apply_definitions);
there are no module-level objects, because building them needs the declarations.

Feature dtypes are Float64 (not Float32): the online store must hand back the
exact values the transform computed, so that online and offline features agree
bit for bit (see features.transforms).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource
from feast.types import Float64, Int64, String
from feast.value_type import ValueType

from features.asset_types import AssetType
from features.contract import ASSET_ID, CYCLE, TIMESTAMP
from features.store import feature_service_name, feature_view_name, push_source_name


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


def build(offline_path: str, ttl: timedelta, asset_type: AssetType) -> Definitions:
    """Create the definitions of one asset type for one feast dir (absolute `offline_path`)
    and TTL."""
    kind = asset_type.name
    # An entity is the key features are looked up by: one monitored asset
    # (an engine, a pump...). Its join key is the contract's asset_id column.
    asset = Entity(
        name="asset",
        join_keys=[ASSET_ID],
        value_type=ValueType.STRING,
        description="A monitored asset (one engine, one pump...), of any asset type.",
    )

    # Batch source: the parquet file of window features written by
    # features.store.write_offline_features. `timestamp` is the reading time the
    # feature row describes; point-in-time joins never look past it.
    source = FileSource(
        name=f"{kind}_window_source",
        path=offline_path,
        timestamp_field=TIMESTAMP,
        description=f"Window features of validated {kind} readings (offline parquet).",
    )

    # Push source: lets serving/ingest push freshly computed feature rows straight
    # into the online store (and optionally the offline store) without waiting
    # for a batch materialization. Its batch_source is the parquet above, so
    # historical retrieval and materialization read the same data.
    push_source = PushSource(name=push_source_name(kind), batch_source=source)

    # The feature view: the schema of window features of an asset. Its source is
    # the push source (so both pushes and materialization feed it). ttl bounds how
    # old a feature row may be and still be joined to a training timestamp.
    feature_view = FeatureView(
        name=feature_view_name(kind),
        entities=[asset],
        ttl=ttl,
        schema=[
            Field(name=ASSET_ID, dtype=String),
            Field(name=CYCLE, dtype=Int64),  # the reading's key, not a model input
            *[Field(name=c, dtype=Float64) for c in asset_type.feature_columns],
        ],
        online=True,
        source=push_source,
        tags={"owner": "twinops", "asset_type": kind,
              "transform": "features.transforms.window_features"},
    )

    # A feature service groups the features one model consumes; its name is
    # recorded on the registered model, so a model version always knows which
    # features (and transform) it was trained on.
    feature_service = FeatureService(
        name=feature_service_name(kind),
        features=[feature_view],
        description=f"Inputs of the physics-informed RUL model of the {kind} type.",
    )
    return Definitions(asset, source, push_source, feature_view, feature_service)
