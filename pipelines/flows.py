"""Prefect flows: the predictive-maintenance loop, one flow per stage.

    ingest ─► features ─► train ─► evaluate ─► promote ─► score ─► monitor ─┐
      ▲                    ▲                                                  │
      │                    └──────────── retrain (challenger only) ◄──────────┘ drift
   simulator / C-MAPSS / CSV / Parquet

Each flow is small and calls plain functions from features/, training/,
serving/ and monitoring/, so the same logic runs from the CLI, a schedule, or a
test. They run in-process against Prefect's ephemeral API by default, or against
a Prefect server when PREFECT_API_URL is set. I/O tasks retry; tasks that take
live clients or big frames use NO_CACHE.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.settings import Settings, get_settings


def _settings(settings: Settings | None) -> Settings:
    return settings or get_settings()


# ───────────────────────────── ingest ─────────────────────────────


@dataclass
class IngestSummary:
    source: str
    asset_type: str
    rows_in: int
    rows_valid: int
    rows_appended: int
    rows_already_stored: int
    rows_quarantined: int
    reasons: dict[str, int]
    #: NaN values of optional sensors kept in the valid rows, per sensor.
    missing_optional: dict[str, int]
    #: Valid rows in an operating regime without fitted levels (refit: fit-regimes).
    unknown_regime: int
    events_appended: int
    quarantine_file: str | None
    data_hash: str | None


@task(cache_policy=NO_CACHE)
def load_source_task(source: str, settings: Settings):
    from features.sources.loader import load_source

    return load_source(source, settings)


@task(cache_policy=NO_CACHE)
def validate_and_store_task(readings, events, settings: Settings, source: str) -> IngestSummary:
    from features import datastore
    from features.contract import QUARANTINE_REASON
    from features.validation import validate_readings, write_quarantine

    # Every write to data/ under the lock: /ingest may be writing at the same time, and
    # training versions data/ and reads readings + events under it (versioning.py).
    with datastore.write_lock(settings):
        result = validate_readings(readings, settings.type,
                                   life_starts=datastore.life_starts(settings))
        other = datastore.register_assets(settings, result.valid)
        valid = result.valid[~other]
        appended, already_stored, conflicts = datastore.append_readings(settings, valid)
        quarantined = result.quarantined
        if other.any():
            registered = datastore.asset_types_of(settings, result.valid[other]["asset_id"])
            clash = result.valid[other].copy()
            clash[QUARANTINE_REASON] = [
                f"asset_id is registered as asset type {registered.get(str(a))!r}, not "
                f"{settings.asset_type!r}" for a in clash["asset_id"]]
            quarantined = clash if not len(quarantined) else _concat(quarantined, clash)
        if len(conflicts):
            conflicts = conflicts.assign(
                **{QUARANTINE_REASON: "conflicts with the stored reading of this (asset_id, cycle)"}
            )
            quarantined = conflicts if not len(quarantined) else _concat(quarantined, conflicts)
        quarantine_file = None
        if len(quarantined):
            quarantine_file = str(write_quarantine(quarantined, settings, source=source))
        events_appended = datastore.append_events(
            settings, events_with_cycles(events, settings.type, datastore.life_starts(settings)))
    reasons = quarantined[QUARANTINE_REASON].value_counts().to_dict() if len(quarantined) else {}
    return IngestSummary(
        source=source,
        asset_type=settings.asset_type,
        rows_in=len(readings),
        rows_valid=len(valid),
        rows_appended=appended,
        rows_already_stored=already_stored,
        rows_quarantined=len(quarantined),
        reasons={str(k): int(v) for k, v in reasons.items()},
        missing_optional=result.missing_optional,
        unknown_regime=result.unknown_regime,
        events_appended=events_appended,
        quarantine_file=quarantine_file,
        data_hash=None,
    )


def events_with_cycles(events, asset_type, life_starts):
    """Events with a cycle: a `timestamp` type's events may give only their time; their cycle
    is then the age in sampling periods from the asset's life start, as for its readings
    (features.validation). Events of an unregistered asset keep no cycle and are dropped."""
    import pandas as pd

    if events is None or not len(events) or asset_type.time_index != "timestamp":
        return events
    missing = pd.to_numeric(events["cycle"], errors="coerce").isna()
    if not missing.any():
        return events
    start = pd.to_datetime(events["asset_id"].astype(str).map(
        {str(k): pd.Timestamp(v) for k, v in life_starts.items()}), utc=True)
    age = (pd.to_datetime(events["timestamp"], utc=True) - start).dt.total_seconds()
    derived = (age / asset_type.sampling_period_s).round() + 1
    out = events.assign(cycle=pd.to_numeric(events["cycle"], errors="coerce").where(~missing,
                                                                                   derived))
    return out.dropna(subset=["cycle"]).astype({"cycle": "int64"})


def _concat(a, b):
    import pandas as pd

    return pd.concat([a, b], ignore_index=True)


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def track_data_task(settings: Settings) -> str:
    from features.versioning import track_data

    return track_data(settings)


@flow(name="ingest", log_prints=True)
def ingest_flow(source: str = "simulator", settings: Settings | None = None) -> IngestSummary:
    """Read a source, validate against the contract, quarantine bad rows, version with DVC."""
    settings = _settings(settings)
    readings, events = load_source_task(source, settings)
    summary = validate_and_store_task(readings, events, settings, source)
    summary.data_hash = track_data_task(settings)
    gaps = f"; optional sensors missing {summary.missing_optional}" if (
        summary.missing_optional) else ""
    if summary.unknown_regime:
        gaps += (f"; {summary.unknown_regime} row(s) in a regime without fitted levels (their "
                 f"sensors read as missing: `twinops asset-types fit-regimes`, then retrain)")
    print(
        f"ingested {summary.rows_appended}/{summary.rows_in} {settings.asset_type} rows from "
        f"{source}; quarantined {summary.rows_quarantined} {summary.reasons or ''}{gaps}; "
        f"data {summary.data_hash}"
    )
    return summary


# ───────────────────────────── features ─────────────────────────────


@flow(name="features", log_prints=True)
def features_flow(settings: Settings | None = None) -> dict:
    """Window features for the stored readings of settings' asset type → Feast offline parquet
    → registry (its feature view, push source and service) → online."""
    from features import datastore, store
    from features.transforms import window_features

    settings = _settings(settings)
    readings = datastore.load_readings(settings)
    if not len(readings):
        raise RuntimeError(f"no {settings.asset_type} readings stored yet: run `twinops ingest` "
                           "first")
    events = datastore.load_events(settings)  # a maintenance starts a new life
    frame = window_features(readings, settings.type, events)
    path = store.write_offline_features(settings, frame)
    store.apply_definitions(settings)
    store.materialize(settings)
    print(f"features: {len(frame)} {settings.asset_type} rows for "
          f"{frame['asset_id'].nunique()} assets → {path}")
    return {"asset_type": settings.asset_type, "rows": len(frame),
            "assets": int(frame["asset_id"].nunique()), "path": str(path)}


# ───────────────────────────── train / evaluate ─────────────────────────────


@dataclass
class TrainSummary:
    run_id: str
    version: str
    metrics: dict = field(default_factory=dict)
    #: The DVC version of data/ the model trained on (its tag dvc_data_hash).
    data_hash: str | None = None


@task(retries=2, retry_delay_seconds=1, cache_policy=NO_CACHE)
def versioned_data_task(settings: Settings):
    """Version data/ and read readings + events under one write lock (a DataVersion).

    Training never reads data/ any other way: POST /ingest and /feedback store rows
    without versioning them, so the version taken here, not the last `twinops ingest`'s,
    is the one that holds every row the model sees.
    """
    from features.versioning import version_and_read

    return version_and_read(settings)


@task(cache_policy=NO_CACHE)
def training_frame_task(settings: Settings, data):
    """Point-in-time training frame from Feast for the labelled readings of `data` (a
    features.versioning.DataVersion).

    The frame's rows are the versioned readings with a label; their features come from
    Feast's offline store (state_dir, not versioned), which may already hold features of
    readings stored after the version (a later /ingest push or features run). The
    point-in-time join only takes a feature row at or before a row's timestamp; a row whose
    joined features were computed at a reading outside the version (a late, back-dated
    reading) is dropped, as a row without features would be by fit, so no reading outside
    the version reaches the model through the frame.
    """
    from features import store
    from features.labels import rul_labels

    labels = rul_labels(data.readings, data.events, per_cycle=settings.type.rul_per_cycle)
    if not len(labels):
        raise RuntimeError("no run-to-failure assets (failure events) to train on")
    frame = store.training_frame(settings, labels)
    outside = _features_outside(frame, data.readings)
    if outside.any():
        print(
            f"training frame: {int(outside.sum())} row(s) dropped, their features were "
            "computed at readings outside the versioned data"
        )
        frame = frame.loc[~outside].reset_index(drop=True)
    return frame


def _features_outside(frame, readings):
    """Mask of frame rows whose feature row is of an (asset_id, cycle) not in `readings`
    (window features carry the cycle of the reading they were computed at)."""
    import pandas as pd

    from features.contract import ASSET_ID, CYCLE

    versioned = pd.MultiIndex.from_arrays(
        [readings[ASSET_ID].astype(str), readings[CYCLE].astype("int64")]
    )
    cycle = pd.to_numeric(frame[CYCLE], errors="coerce")
    joined = pd.MultiIndex.from_arrays(
        [frame[ASSET_ID].astype(str), cycle.fillna(-1).astype("int64")]
    )
    return (cycle.notna() & ~joined.isin(versioned)).to_numpy()


@flow(name="train", log_prints=True)
def train_flow(
    settings: Settings | None = None, physics: bool = True, extra_tags: dict | None = None
) -> TrainSummary:
    """Version data/ → point-in-time training frame from Feast → Lightning fit → MLflow run
    + registered version.

    Lineage: data/ is versioned (dvc add + push) before anything is read, and the readings
    and events the frame and the virtual assets are built from are read under the same
    write lock (versioned_data_task); the model's dvc_data_hash is that version, and the
    data.rows / data.readings_sha256 tags say what was read from it, so `dvc pull` of the
    hash can be checked against them. Every path that trains (`twinops train`,
    `twinops run`, the monitor's retrain) comes through here.
    """
    from features.store import feature_service_name
    from training.registry import log_and_register
    from training.train import fit

    settings = _settings(settings)
    if not physics:
        settings = settings.model_copy(update={"training": settings.training.data_only()})
    data = versioned_data_task(settings)
    frame = training_frame_task(settings, data)
    result = fit(frame, settings, feature_columns=settings.type.feature_columns,
                 readings=data.readings)
    run_id, version = log_and_register(
        settings,
        result,
        dvc_hash=data.data_hash,
        feature_service=feature_service_name(settings.asset_type),
        extra_tags={**data.lineage_tags(), **(extra_tags or {})},
    )
    m = result.metrics  # every metric is on the MLflow run; the headline ones here
    print(
        f"trained {settings.model_name} v{version} (run {run_id}) on data {data.data_hash}: "
        f"{result.params['physics_variant']} chosen; out-of-fold RMSE at random cuts of life "
        f"{m['val_cut_rmse']:.2f} (constant RUL {m['val_cut_constant_rmse']:.2f}; all rows "
        f"{m['val_rmse']:.2f}), coverage {m['val_cut_coverage']:.2f}, {m['epochs']:.0f} epochs"
    )
    return TrainSummary(
        run_id=run_id, version=str(version), metrics=dict(result.metrics), data_hash=data.data_hash
    )


@flow(name="evaluate", log_prints=True)
def evaluate_flow(version: str | None = None, settings: Settings | None = None) -> dict:
    """All automatic gates for a version (default: the latest) with the review report;
    passing → alias `challenger`, awaiting approval; failing → rejected with its reasons.

    The gates are one list (pipelines.gates): the floor every model must clear (beat a
    constant-RUL predictor on held-out assets), then the comparison with the champion on
    the same pinned units (metrics within tolerance), coverage and physics.
    """
    from pipelines import review
    from training.registry import latest_version

    settings = _settings(settings)
    cand = settings.candidates_model_name
    version = str(version or latest_version(settings, model=cand) or "")
    if not version:
        raise LookupError(f"no registered version of {cand!r}: train first")
    proposal = review.propose(settings, version)
    print(
        f"v{version}: {proposal['status']} {proposal['failures'] or ''} "
        f"(report {proposal['report']})"
    )
    return proposal


# ───────────────────────────── promote ─────────────────────────────


@flow(name="promote", log_prints=True)
def promote_flow(
    version: str | None = None, demo_auto_approve: bool = False, settings: Settings | None = None
) -> dict:
    """Promote a challenger with the demo's explicit auto-approval (recorded as such).

    Real promotions go through `twinops review approve` (four-eyes, audited) or
    the promotion flow that waits for a reviewer (pipelines/promotion_flow.py).
    """
    from pipelines import review
    from training.registry import get_alias_version

    settings = _settings(settings)
    if not demo_auto_approve:
        raise PermissionError(
            "promotion needs a reviewer: use `twinops review approve VERSION --comment ...` "
            "(or --demo-auto-approve for a demo, recorded as an automatic demo approval)"
        )
    version = version or get_alias_version(settings, "challenger",
                                           model=settings.candidates_model_name)
    if version is None:
        raise RuntimeError("no version has the alias 'challenger': run `twinops evaluate` first")
    result = review.approve(settings, version, "twinops run (demo)", demo=True)
    print(f"champion → v{result['champion']} (candidate v{version}; was "
          f"{result['previous']}); {result['comment']}")
    return result


# ───────────────────────────── score (in-process serving) ─────────────────────────────


def in_service(readings, events) -> list[str]:
    """Assets not failed at their last reading: a failure at or after it ended the life; a
    maintenance renewed it (the asset is in service again)."""
    from features.contract import ASSET_ID, CYCLE, EVENT, EVENT_FAILURE

    last = readings.groupby(readings[ASSET_ID].astype(str))[CYCLE].max()
    if len(events):
        failures = events[events[EVENT] == EVENT_FAILURE]
        failed_at = failures.groupby(failures[ASSET_ID].astype(str))[CYCLE].max()
        ended = failed_at.reindex(last.index) >= last
        last = last[~ended.fillna(False).to_numpy()]
    return sorted(last.index)


@flow(name="score", log_prints=True)
def score_flow(asset_ids: list[str] | None = None, settings: Settings | None = None) -> list[str]:
    """Predict for assets through the serving code path (champion + online features + log).

    The demo uses this to produce the prediction log without a running server;
    the HTTP service calls the very same function per request.
    """
    import functools

    from features import datastore, store
    from features.prediction_log import PredictionLog
    from pipelines.approvals import load_champion
    from serving.predict import ServedModel, predict_assets
    from serving.schemas import PredictRequest

    settings = _settings(settings)
    model = ServedModel.from_loaded(load_champion(settings))
    if asset_ids is None:
        asset_ids = in_service(datastore.load_readings(settings), datastore.load_events(settings))
    response = predict_assets(
        PredictRequest(asset_ids=asset_ids),
        model=model,
        fetch_features=functools.partial(store.online_features, settings,
                                         store=store.get_store(settings)),
        default_horizon=settings.horizon,
        log=PredictionLog(settings.prediction_log_path),
    ).model_dump()
    ok = [p for p in response["predictions"] if "error" not in p]
    print(f"scored {len(ok)}/{len(asset_ids)} assets with {model.name} v{model.version}")
    return [p["asset_id"] for p in ok]
