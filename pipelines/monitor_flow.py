"""The monitor flow: drift of what the service saw vs the training reference → retrain.

    prediction log ─► distinct asset states ─┐
                                             ├─► monitoring.drift_report (stage-matched on RUL)
    offline features of training assets ─────┘        │ HTML + JSON, logged to MLflow
      (scored by the champion)                        ▼
                                   monitoring.policy.decide_retrain ─► train_flow ─► challenger

A retrained model is registered and gated to `challenger` at most: it never
becomes champion without the promotion step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.settings import Settings
from pipelines.flows import _settings, evaluate_flow, train_flow


@dataclass
class MonitorSummary:
    drift: bool
    share: float
    report_html: str
    report_json: str
    retrain: bool
    reasons: list[str]
    retrained_version: str | None = None


@task(cache_policy=NO_CACHE)
def monitoring_frames_task(settings: Settings, since: datetime | None):
    """(reference, current) with the champion's predicted RUL on both, for stage matching.

    Reference: feature rows of the run-to-failure (training) assets, scored by the
    champion. Current: the prediction log, one row per asset state (an asset
    scored many times on the same features counts once).
    """
    import pandas as pd

    from features import datastore, store
    from monitoring.drift import distinct_states
    from serving.prediction_log import PredictionLog
    from training.registry import load_by_alias

    current = distinct_states(PredictionLog(settings.prediction_log_path).read(since=since))
    if not len(current):
        raise RuntimeError("the prediction log is empty: nothing to monitor yet")
    events = datastore.load_events(settings)
    offline = pd.read_parquet(store.offline_path(settings))
    reference = offline[offline["asset_id"].isin(set(events["asset_id"]))].reset_index(drop=True)
    champion = load_by_alias(settings, "champion")
    reference["rul"] = champion.predictor.predict(reference, horizon=settings.serving.horizon)[
        "rul"
    ].to_numpy()
    return reference, current


@flow(name="monitor", log_prints=True)
def monitor_flow(
    settings: Settings | None = None, retrain_on_drift: bool = True, since: datetime | None = None
) -> MonitorSummary:
    """Compare logged prediction inputs with the training reference; drift → retrain flow.

    Like is compared with like: the reference is re-weighted to the current
    cohort's distribution of predicted RUL (life stage) before Evidently tests
    each feature, so an ageing fleet is not mistaken for drift (see
    monitoring/drift.py). A retrained model is registered and gated to
    `challenger` at most: it never becomes champion without the promotion step.
    """
    import mlflow

    from features.transforms import FEATURE_COLUMNS
    from monitoring.drift import drift_report
    from monitoring.policy import RetrainPolicy, decide_retrain

    settings = _settings(settings)
    reference, current = monitoring_frames_task(settings, since)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    columns = [
        c
        for c in FEATURE_COLUMNS
        if c in current.columns and c != "cycle" and reference[c].nunique() > 1
    ]
    result = drift_report(
        reference,
        current,
        columns,
        settings.reports_dir / f"drift-{stamp}",
        stage_column="rul",
        share_threshold=settings.monitoring.drift_share_threshold,
        column_threshold=settings.monitoring.column_threshold,
    )
    mlflow.set_tracking_uri(settings.tracking_uri)
    _ensure_experiment(settings, f"{settings.experiment_name}-monitoring")
    with mlflow.start_run(run_name=f"drift-{stamp}") as run:
        mlflow.log_metrics(
            {"drift_share": result.share, "drift": float(result.drift), "rows": len(current)}
        )
        mlflow.log_artifact(str(result.html_path), artifact_path="drift")
        mlflow.log_artifact(str(result.json_path), artifact_path="drift")
    policy = RetrainPolicy(
        max_drift_share=settings.monitoring.drift_share_threshold,
        min_rows=settings.monitoring.min_rows,
    )
    decision = decide_retrain(result, policy, now=datetime.now(UTC), new_rows=len(current))
    summary = MonitorSummary(
        drift=result.drift,
        share=result.share,
        report_html=str(result.html_path),
        report_json=str(result.json_path),
        retrain=decision.retrain,
        reasons=list(decision.reasons),
    )
    print(
        f"drift={result.drift} share={result.share:.2f} → retrain={decision.retrain} "
        f"{decision.reasons}"
    )
    if decision.retrain and retrain_on_drift:
        trained = train_flow(
            settings,
            extra_tags={
                "trigger.drift_report": str(result.json_path),
                "trigger.monitor_run": run.info.run_id,
            },
        )
        evaluate_flow(trained.version, settings)
        summary.retrained_version = trained.version
    return summary


def _ensure_experiment(settings: Settings, name: str) -> None:
    import mlflow

    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=settings.artifact_root.as_uri())
    mlflow.set_experiment(name)
