"""One typed settings object for the whole platform.

    twinops.yaml ─┐
    TWINOPS_* env ┼─► Settings ─► every backend URI / path / knob
    defaults ─────┘   (embedded defaults need no server)

It lives in `features/` because that is the bottom of the import chain
(features ← training ← serving; monitoring uses features; pipelines composes all),
so every package can read it without importing upward.

Precedence (highest first): init kwargs, `TWINOPS_*` environment variables
(nested with `__`, e.g. `TWINOPS_TRAINING__MAX_EPOCHS=3`), the YAML file named by
`TWINOPS_CONFIG` (default `./twinops.yaml`, optional), then the defaults below.

All state of a run (MLflow db + artifacts, Feast registry + online store +
offline parquet, reports, quarantine, prediction log) lives under `state_dir`,
so two runs with different `TWINOPS_STATE_DIR` never mix, and a state dir can be moved or
copied: the stores' absolute paths follow it on first use (features.relocate).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

# A leaf module (pydantic only, no project import): the policy's one definition, no cycle.

#: Named sets of defaults for smaller runs, chosen with `TWINOPS_PROFILE` (or
#: `twinops --profile NAME`). A profile sits just above the built-in defaults: any value set
#: in `twinops.yaml`, a `TWINOPS_*` variable or a keyword still wins.
#:
#: * `demo`: what `make demo` runs, so that a person can watch the whole loop at a fraction of
#:   the full training cost. A smaller ensemble, one feature set, fewer virtual assets and
#:   epochs; the demo fleet still passes every promotion gate on its merits (the gates are
#:   not relaxed).
#: * `tiny`: the test suite's training budget. It exercises every code path (ensemble
#:   cross-fitting, virtual assets, physics terms, calibration) on the least compute that
#:   still learns; quality is measured by `twinops benchmark rul`, not by tests.
PROFILES: dict[str, dict] = {
    "demo": {
        "simulator": {"fleet_sizes": {"pump": 16}},
        "training": {"n_members": 4, "max_epochs": 6, "select_features": False,
                     "time_scale_copies": 1, "max_virtual_assets": 40,
                     # 16 pump lives are a tenth of the optimiser steps per epoch of 40
                     # turbofans; at 6 epochs the pump did not beat a constant at the cuts
                     "by_type": {"pump": {"max_epochs": 30}}},
    },
    "tiny": {
        "simulator": {"n_assets": 12, "fleet_sizes": {"pump": 6}},
        "training": {"n_members": 2, "n_folds": 2, "max_epochs": 8, "hidden_size": 32,
                     "select_features": False, "time_scale_copies": 1,
                     "max_virtual_assets": 6},
    },
}


class FeastSettings(BaseModel):
    """Feast stores. Embedded default: SQLite online store, parquet offline store."""

    project: str = "twinops"
    online_store: Literal["sqlite", "redis"] = "sqlite"
    #: Redis connection string, used when online_store == "redis" (e.g. "localhost:6379").
    redis_connection: str = "localhost:6379"
    #: Feature view TTL in days: how far back point-in-time joins look, and (in
    #: serving) the age beyond which online features are flagged stale.
    ttl_days: int = 3650


class SimulatorSettings(BaseModel):
    """The embedded fleet simulator (the demo's data source)."""

    n_assets: int = 40
    seed: int = 7
    #: Fleet size per asset type where it differs from n_assets. The pump's physics (ProgPy)
    #: costs seconds of CPU per pump, so its demo fleet is smaller (features/sources/pump.py).
    fleet_sizes: dict[str, int] = {"pump": 20}

    #: Where physics simulators (the pump's ProgPy runs) keep their trajectories, keyed by
    #: seed and unit; None = <state_dir>/cache/simulator. A shared folder lets several state
    #: dirs (tests, demos) reuse one simulation.
    cache_dir: Path | None = None

    def size(self, asset_type: str) -> int:
        return int(self.fleet_sizes.get(asset_type, self.n_assets))


class TrainingSettings(BaseModel):
    """Knobs of the physics-informed RUL model and its training run."""

    #: max_epochs, hidden_size, n_members: chosen on C-MAPSS FD001 out-of-fold validation
    #: units, never on the test units (benchmarks/rul.py; docs/experiments.md).
    max_epochs: int = 40
    batch_size: int = 256
    learning_rate: float = 2e-3
    hidden_size: int = 128
    #: Deep-ensemble size of the RUL network (training/network.py); >= 2, because each
    #: cross-fitting fold needs a member that never trained on it.
    n_members: int = Field(default=10, ge=2)
    seed: int = 42
    #: Piecewise-linear target cap in RUL units; None = the asset type's `rul_cap`
    #: (125 cycles for the turbofan: the standard C-MAPSS protocol).
    rul_cap: float | None = Field(default=None, gt=0)
    #: RUL units per cycle of age: set from the asset type by Settings.training_settings()
    #: (1 for cycles; the sampling period in hours for an hours type), not by hand.
    rul_per_cycle: float = Field(default=1.0, gt=0)
    #: Weights of the physics terms in the loss; 0 turns a term off (data-only baseline).
    weight_time_consistency: float = 1.0
    weight_damage_law: float = 0.1
    #: Time-consistency pairs link a reading to one 1..pair_max_gap readings later
    #: (1 = the next one; longer gaps were worse on C-MAPSS validation units,
    #: docs/experiments.md).
    pair_max_gap: int = 1
    #: Cross-fitting folds (by asset): ensemble member k never trains on fold k mod n_folds,
    #: and every run-to-failure asset is predicted out of fold for early stopping,
    #: calibration and the validation metrics (training.datamodule). Capped at n_members.
    n_folds: int = Field(default=5, ge=2)
    #: Also train without each optional feature group (features.transforms.
    #: OPTIONAL_FEATURE_GROUPS) and keep the fit with the lowest out-of-fold validation RMSE
    #: (training.train). False: every feature, half the CPU time.
    select_features: bool = True
    #: Processes the candidate feature sets train in, side by side (training.train), at most
    #: one per candidate: 0 = one per CPU core on training frames of at least
    #: training.candidates.AUTO_WORKERS_MIN_ROWS rows (where a worker's start pays), else 1;
    #: 1 = one after the other in this process. Each run is single-threaded and
    #: deterministic, so the result is the same either way.
    workers: int = Field(default=0, ge=0)
    #: Virtual run-to-failure assets made per labelled asset by the damage law's
    #: time-scaling symmetry: its raw readings worn at the pace of another asset of the
    #: fleet (training.augment). 0 = none. More copies show the network more paces of wear
    #: than a small fleet has failures, at the price of training time: each copy adds the
    #: rows of its asset to every training run. 4 is the count that won on out-of-fold
    #: validation of a 20-failure fleet (docs/experiments.md).
    time_scale_copies: int = Field(default=4, ge=0)
    #: At most this many virtual assets in all: a fleet with more than
    #: max_virtual_assets / time_scale_copies failures gets fewer copies per asset
    #: (max_virtual_assets // failures; none past max_virtual_assets failures). Why: training
    #: time grows with every copy, and a large fleet already shows many paces. 200 gives a
    #: 100-failure fleet (C-MAPSS FD001) 2 copies per asset, where 4 overran the 5-minute
    #: training budget per seed (docs/experiments.md).
    max_virtual_assets: int = Field(default=200, ge=0)
    #: Physics priors (the loss terms and the virtual assets): "on", "off" (the data-only
    #: baseline), or "auto": train both and ship the one with the lower cut validation RMSE
    #: (training.truncation), so the physics is kept on a fleet only where it pays there.
    physics: Literal["auto", "on", "off"] = "auto"
    interval_level: float = 0.9
    #: The floor gate ("beats constant RUL", pipelines.gates): a version becomes `challenger`
    #: only if its out-of-fold validation RMSE is at most this factor x that of predicting
    #: the training mean RUL for every row (0.9 = at least 10% lower).
    gate_max_rmse_ratio_to_constant: float = 0.9
    #: Overrides of the fields above for one asset type, {type: {field: value}}, e.g.
    #: {"pump": {"max_epochs": 20}}: a fleet of 16 short pump lives takes a tenth of the
    #: optimiser steps per epoch that 40 turbofans do. Applied by Settings.training_settings().
    by_type: dict[str, dict] = {}

    @field_validator("by_type")
    @classmethod
    def _valid_overrides(cls, by_type: dict[str, dict]) -> dict[str, dict]:
        for name, fields in by_type.items():
            unknown = sorted(set(fields) - (set(cls.model_fields) - {"by_type"}))
            if unknown:
                raise ValueError(f"by_type.{name}: not a training setting: {', '.join(unknown)}")
            cls.model_validate(fields)  # a bad value fails here, naming its field
        return by_type

    def for_asset_type(self, name: str) -> TrainingSettings:
        """These settings with `by_type[name]`'s overrides applied."""
        fields = self.by_type.get(name)
        if not fields:
            return self
        return type(self).model_validate({**self.model_dump(), **fields})

    def data_only(self) -> TrainingSettings:
        """The data-only baseline: the same network, data and budget, every physics prior off
        (the loss terms and the virtual assets of the damage law)."""
        return self.model_copy(
            update={
                "weight_time_consistency": 0.0,
                "weight_damage_law": 0.0,
                "time_scale_copies": 0,
                "physics": "off",
            }
        )

    def physics_variants(self) -> dict[str, TrainingSettings]:
        """{"pinn" | "baseline": its settings} that `fit` trains and chooses between."""
        pinn = self.model_copy(update={"physics": "on"})
        return {"on": {"pinn": pinn}, "off": {"baseline": self.data_only()},
                "auto": {"pinn": pinn, "baseline": self.data_only()}}[self.physics]


class ServingSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 3000
    #: BentoML worker processes for `twinops serve`: one per core, because one worker is
    #: CPU-bound on a single core and leaves the others idle (figures:
    #: docs/benchmarks.md#serving, docs/experiments.md#serving).
    workers: int = 2
    #: Default horizon of the probability of failure, in RUL units; None = the asset
    #: type's `horizon`.
    horizon: float | None = Field(default=None, gt=0)
    max_batch: int = 256
    #: API keys are required unless this is explicitly false (local demos only).
    auth_enabled: bool = True
    #: SHA-256 hex digests of the accepted API keys (never the keys themselves);
    #: `python -m serving.guard KEY` prints one. Auth on + no hashes = every call 401.
    api_key_sha256: list[str] = []
    #: What each key may do, by its digest: any of "predict" (/predict, /predict_window,
    #: /fleet/risk, /recommend, /whatif), "ingest", "feedback" (failure labels, which
    #: drive retraining), "admin" (everything). A digest not listed here may do everything,
    #: so configurations written before scopes keep working; give every key its scopes.
    api_key_scopes: dict[str, list[Literal["predict", "ingest", "feedback", "admin"]]] = {}
    #: Request bodies larger than this are answered 413 before they are read.
    max_body_bytes: int = 1_000_000
    #: Seconds a request body may take to arrive whole, else 408 (serving.guard): a
    #: max_body_bytes body at 1 Mbit/s takes 8 s; a client that declares more than it sends
    #: was held until BentoML's 60 s timeout (a 504).
    body_timeout_s: float = Field(default=10.0, gt=0)
    #: Seconds from a connection's start (or, on a keep-alive connection, from the next
    #: request's first byte) to the end of the request's headers, else 408 and the
    #: connection closed (serving.header_timeout): uvicorn bounds neither, so a client that
    #: never finished its headers held the connection for good (slowloris).
    header_timeout_s: float = Field(default=10.0, gt=0)
    #: Readings per /ingest or /predict_window request, and events per /feedback.
    max_rows: int = 5_000
    #: Seconds between checks of where the `champion` alias points (hot swap); 0 = off.
    model_poll_s: float = 5.0
    #: Prediction-log rows buffered for the background writer before requests wait.
    log_queue_size: int = 10_000
    #: Seconds a stopping worker keeps answering its open keep-alive connections, each
    #: answer telling the client to reconnect (refused by then), before it closes them
    #: (serving.shutdown: a connection closed at once resets the request sent on it).
    shutdown_drain_s: float = Field(default=1.0, ge=0)


class RetrainPolicy(BaseModel):
    """When drift justifies a retrain; the one source of each default.

    `settings.monitoring.retrain` holds the policy in use: twinops.yaml
    `monitoring.retrain.<field>`, env `TWINOPS_MONITORING__RETRAIN__<FIELD>`
    (here, beside the other settings; monitoring.policy.decide_retrain applies it). Defaults
    suit a daily monitor run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Retrain when at least this share of monitored columns drifted. Half the signals
    #: changed at equal life stage is a different plant; with trigger_on_verdict on, one
    #: drifted column triggers anyway, so this matters where that is turned off.
    max_drift_share: float = Field(default=0.5, ge=0.0, le=1.0)
    #: Fewer current assets than this (rows, for a row-level DriftResult): the drift triggers
    #: are not trusted. Assets, because they are the verdict's sample; 30, because its
    #: Welch test assumes roughly normal asset means, and with fewer assets one odd asset
    #: can make a "drift" by itself.
    min_rows: int = Field(default=30, ge=0)
    #: Cooldown between retrains (hours): a daily run starts at most one retrain a day, and a
    #: challenger gets its review time before the next one replaces it.
    min_hours_between_retrains: float = Field(default=24.0, ge=0.0)
    #: New labelled rows needed since the last retrain; 0 = none, because a drift alarm alone
    #: is reason enough to try a model on the data there is.
    min_new_rows: int = Field(default=0, ge=0)
    #: Columns whose drift alone triggers even with trigger_on_verdict off; none by default,
    #: because no sensor is more important than another until an operator says so.
    critical_columns: tuple[str, ...] = ()
    #: Trigger when more than this share of current rows is in life stages the reference
    #: lacks; None = off, because assets younger or older than any reference asset show up
    #: here too, and a cohort with no matched row at all is drift by the verdict already.
    max_unmatched_share: float | None = Field(default=None, ge=0.0, le=1.0)
    #: Retrain when no retrain happened for this long (hours); None = off, because the clock
    #: alone is no evidence that a new model would be better.
    max_hours_without_retrain: float | None = Field(default=None, gt=0.0)
    #: The verdict's drift (a sensor changed at equal life stage, family-wise corrected;
    #: monitoring/verdict.py) triggers even below max_drift_share. On: that verdict is the
    #: question the check is built to answer.
    trigger_on_verdict: bool = True
    #: Realized RMSE (latest bucket) above this triggers; None = off, because an acceptable
    #: error depends on the fleet and on training.rul_cap.
    max_realized_rmse: float | None = Field(default=None, gt=0.0)
    #: Latest-bucket RMSE above this factor x the version's first bucket triggers; None =
    #: off. 1.5: a 50% rise is about three times the relative sampling error of an RMSE
    #: over min_feedback_predictions predictions (~1/sqrt(2n)), so it is decay, not noise.
    max_rmse_ratio: float | None = Field(default=1.5, gt=1.0)
    #: Predictions with known truth needed before the error trend is trusted: from 20 on the
    #: sampling error of an RMSE (~1/sqrt(2n)) is below 16%.
    min_feedback_predictions: int = Field(default=20, ge=1)


class MonitoringSettings(BaseModel):
    """The drift check's knobs and the retrain policy (`monitoring.retrain.<field>`).

    Unknown keys are errors: a retrain trigger written one level too high
    (`monitoring.min_rows`) must not be ignored in silence.
    """

    model_config = ConfigDict(extra="forbid")

    #: Family-wise false-alarm level of the stage-matched per-sensor tests (Bonferroni).
    alpha: float = 0.01
    #: Smallest shift (within-stage std units) that counts as drift, whatever the p-value.
    min_shift: float = 0.25
    #: Per-column threshold of the Evidently report's drift tests (the rendering, not the
    #: verdict); None = each method's own default (monitoring/drift.py says which).
    column_threshold: float | None = None
    #: Every retrain trigger and blocker; its defaults, and why, are in monitoring/policy.py.
    retrain: RetrainPolicy = RetrainPolicy()


class ReviewSettings(BaseModel):
    """Promotion gates and review rules (issue: model promotion a reviewer can trust)."""

    #: Candidate RMSE may exceed the champion's by at most this fraction (0.05 = 5%).
    rmse_tolerance: float = 0.05
    #: Candidate PHM08 score may exceed the champion's by at most this fraction.
    score_tolerance: float = 0.25
    #: Interval coverage on the evaluation units must lie in [coverage_min, coverage_max].
    coverage_min: float = 0.75
    coverage_max: float = 0.99
    #: Physics checks on held-out trajectories.
    max_time_consistency_residual: float = 3.0
    max_damage_reversal_share: float = 0.10
    #: A reviewer must not be the trainer (four-eyes). Never turn off outside tests/demos.
    four_eyes: bool = True
    #: How long the promotion flow waits for a decision (Prefect pause-for-input).
    wait_seconds: int = 7 * 24 * 3600
    #: URL of `twinops govern`, the process that holds the service identity. Set: review
    #: decisions are sent there with the caller's own MLflow credentials. None: they run in
    #: this process (the embedded default, where one local user holds every identity).
    governor_url: str | None = None


class WorkOrderSettings(BaseModel):
    """Work-order proposals to a CMMS (serving.work_orders; docs/work-orders.md).

    A proposal is a work *request* for a planner to approve in the CMMS, never a scheduled
    job. The bearer token is read from the environment variable named here, so no secret
    is ever written in twinops.yaml.
    """

    model_config = ConfigDict(extra="forbid")

    #: The CMMS webhook proposals are POSTed to; None = proposals are kept in the outbox
    #: and listed (`twinops work-orders list`), nothing is posted.
    cmms_url: str | None = None
    #: Name of the environment variable holding the CMMS token (sent as
    #: `Authorization: Bearer <token>`); None = no auth header.
    token_env: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)
    #: A failed delivery waits backoff_base_s x 2^(attempts-1), at most backoff_max_s, before
    #: the next try; it is retried until delivered or rejected (never dropped).
    backoff_base_s: float = Field(default=60.0, gt=0)
    backoff_max_s: float = Field(default=6 * 3600.0, gt=0)
    #: Assets ranked below this risk (p_fail x criticality) are not priced. 0: every asset in
    #: service with a prediction, up to max_assets, because the cost policy decides what pays.
    min_risk: float = Field(default=0.0, ge=0.0)
    #: The highest-risk assets per type priced per run (a bound on the monitor run's work).
    max_assets: int = Field(default=256, ge=1, le=1000)
    #: The recommended actions that become a proposal (`run` never does).
    actions: tuple[Literal["inspect", "plan_maintenance", "stop_now"], ...] = (
        "inspect", "plan_maintenance", "stop_now")


class AlertSettings(BaseModel):
    """Alerts of the monitor flow: risk, sensor health, drift (monitoring.alerts; docs/alerts.md).

    Unknown keys are errors, as under `monitoring:`: a threshold under a misspelt name must
    not leave the alerts at their defaults in silence.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Alert when an asset's risk (p_fail within the horizon x criticality, the ranking of
    #: `twinops fleet`) is at or above this: 0.5 = even odds of failing within the horizon
    #: for a criticality-1 asset.
    risk_threshold: float = Field(default=0.5, ge=0.0)
    #: The last readings per asset the sensor rules read: dead = missing in all of them,
    #: frozen = one value in all of them (where the sensor moves in the fleet's history),
    #: out of range = any of them outside the declared range.
    readings_window: int = Field(default=10, ge=2)
    #: Saved Prefect notification blocks, `<block-type-slug>/<document name>` (e.g.
    #: "slack-webhook/ops"); none = alerts are stored and listed (`twinops alerts`) only.
    notify: list[str] = []
    #: At most max_notifications alerts are notified per throttle_minutes; the rest stay
    #: pending for a later run (a flood must not bury the channel).
    max_notifications: int = Field(default=20, ge=1)
    throttle_minutes: float = Field(default=60.0, gt=0)

    @field_validator("notify")
    @classmethod
    def _block_slugs(cls, names: list[str]) -> list[str]:
        import re

        for name in names:
            if not re.fullmatch(r"[a-z0-9][a-z0-9-]*/[^/\s]+", name):
                raise ValueError(f"{name!r} is not '<block-type-slug>/<block name>' "
                                 "(e.g. 'slack-webhook/ops', 'custom-webhook/ops')")
        return names


class Settings(BaseSettings):
    """Typed configuration; read `twinops.yaml` and `TWINOPS_*` env vars."""

    model_config = SettingsConfigDict(
        env_prefix="TWINOPS_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    #: A name of PROFILES (smaller defaults for the demo or the tests); None = full size.
    profile: Literal["demo", "tiny"] | None = None
    state_dir: Path = Field(default_factory=lambda: Path.cwd() / ".twinops")
    #: DVC-tracked data directory (raw readings, events, quarantine, reference data).
    data_dir: Path = Field(default_factory=lambda: Path.cwd() / "data")
    #: MLflow tracking + registry URI; None = embedded sqlite under state_dir.
    mlflow_tracking_uri: str | None = None
    #: DVC remote; None = a local directory under state_dir.
    dvc_remote_url: str | None = None
    #: Registered MLflow models are named `<model_prefix>-<asset type>` (`twinops-rul-pump`).
    model_prefix: str = "twinops-rul"
    experiment_name: str = "twinops"
    #: The asset type (features.asset_types) this settings object addresses: every path,
    #: Feast object and model name below that is per type follows it (`for_type`).
    asset_type: str = "turbofan"
    #: A folder of asset-type declarations (one YAML file per type), besides the built-ins.
    asset_types_dir: Path | None = None
    #: Asset types declared inline: {name: declaration} (same fields as a YAML file).
    asset_types: dict[str, dict] = {}

    feast: FeastSettings = FeastSettings()
    simulator: SimulatorSettings = SimulatorSettings()
    training: TrainingSettings = TrainingSettings()
    serving: ServingSettings = ServingSettings()
    monitoring: MonitoringSettings = MonitoringSettings()
    review: ReviewSettings = ReviewSettings()
    alerts: AlertSettings = AlertSettings()
    work_orders: WorkOrderSettings = WorkOrderSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = os.environ.get("TWINOPS_CONFIG", "twinops.yaml")
        yaml_settings = YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file)
        sources = [init_settings, env_settings, yaml_settings]
        profile = next((p for p in (src().get("profile") for src in sources) if p), None)
        if profile in PROFILES:  # an unknown name fails on the `profile` field, with the choices
            sources.append(InitSettingsSource(settings_cls, init_kwargs=PROFILES[profile]))
        return tuple(sources)

    @model_validator(mode="after")
    def _absolute_paths(self) -> Settings:
        self.state_dir = self.state_dir.expanduser().resolve()
        self.data_dir = self.data_dir.expanduser().resolve()
        if self.asset_types_dir is not None:
            self.asset_types_dir = self.asset_types_dir.expanduser().resolve()
        if self.asset_type not in self.declared_types():
            _unknown_type(self.asset_type, self.declared_types())
        return self

    # ---- asset types ----
    def declared_types(self) -> dict:
        """Every declared asset type, {name: AssetType} (built-ins + this config's)."""
        from features.asset_types import load_asset_types

        return load_asset_types(self.asset_types_dir, self.asset_types)

    @property
    def type(self):
        """The AssetType of `asset_type`."""
        return self.declared_types()[self.asset_type]

    def for_type(self, name: str) -> Settings:
        """These settings, addressing asset type `name` (paths, Feast objects, model name)."""
        types = self.declared_types()
        if name not in types:
            _unknown_type(name, types)
        return self.model_copy(update={"asset_type": name})

    @property
    def window(self) -> int:
        """Readings in the feature window of this asset type."""
        return self.type.window

    @property
    def rul_cap(self) -> float:
        """The RUL target cap in use: training.rul_cap (or its by_type override), else the
        asset type's."""
        return float(self.training.for_asset_type(self.asset_type).rul_cap or self.type.rul_cap)

    @property
    def horizon(self) -> float:
        """The default failure horizon in use: serving.horizon, else the asset type's."""
        return float(self.serving.horizon or self.type.horizon)

    def training_settings(self) -> TrainingSettings:
        """training for this asset type: its by_type overrides applied, rul_cap resolved
        (what the trainer and its workers read)."""
        return self.training.for_asset_type(self.asset_type).model_copy(
            update={"rul_cap": self.rul_cap, "rul_per_cycle": self.type.rul_per_cycle})

    @property
    def model_name(self) -> str:
        """The registered MLflow model of this asset type."""
        return f"{self.model_prefix}-{self.asset_type}"

    @property
    def candidates_model_name(self) -> str:
        """Where training registers versions of this asset type: trainers may write it. The
        serving model (`model_name`) is written only by the service identity, which copies an
        approved candidate into it (docs/review.md#identities)."""
        return f"{self.model_name}-candidates"

    @property
    def reviews_experiment_name(self) -> str:
        """The service-owned experiment whose runs hold the review reports, out of trainers'
        reach (they may only read it)."""
        return f"{self.experiment_name}-reviews"

    # ---- derived locations (all under state_dir unless configured) ----
    @property
    def tracking_uri(self) -> str:
        return self.mlflow_tracking_uri or f"sqlite:///{self.state_dir / 'mlflow.db'}"

    @property
    def artifact_root(self) -> Path:
        return self.state_dir / "mlartifacts"

    @property
    def artifact_location(self) -> str | None:
        """Where new MLflow experiments keep artifacts: under state_dir for the embedded
        store; None (the tracking server's own artifact store) for a server."""
        return None if self.mlflow_tracking_uri else self.artifact_root.as_uri()

    @property
    def feast_dir(self) -> Path:
        return self.state_dir / "feast"

    @property
    def reports_dir(self) -> Path:
        return self.state_dir / "reports" / self.asset_type

    @property
    def prediction_log_path(self) -> Path:
        return self.state_dir / "predictions.sqlite"

    @property
    def simulator_cache(self) -> Path:
        return self.simulator.cache_dir or self.state_dir / "cache" / "simulator"

    @property
    def dvc_remote(self) -> str:
        return self.dvc_remote_url or str(self.state_dir / "dvc-remote")

    @property
    def raw_root(self) -> Path:
        """data/raw: the asset registry and the write lock, shared by every type."""
        return self.data_dir / "raw"

    @property
    def raw_dir(self) -> Path:
        """This type's readings and events (their columns differ per type)."""
        return self.raw_root / self.asset_type

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine" / self.asset_type


def _unknown_type(name: str, types: dict) -> None:
    raise ValueError(f"asset_type {name!r} is not declared; declared: {', '.join(sorted(types))}")


def get_settings(**overrides) -> Settings:
    """Build settings fresh (no global cache: tests and runs switch state dirs)."""
    return Settings(**overrides)
