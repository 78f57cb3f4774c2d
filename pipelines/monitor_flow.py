"""The monitor flow: what the service saw vs the training reference, error trend → retrain.

    prediction log (since) ─► distinct asset states ───────────┐
    offline features of run-to-failure assets (+ true RUL) ────┼─► monitoring.check.run_check
    champion (scores both sides: life stage = predicted RUL) ──┘    (stage-matched per-sensor
                                                                     tests, quality, prediction)
         │ Verdict: verdict JSON + Evidently HTML/JSON + MLflow run (<experiment>-monitoring)
    failure feedback ─► monitoring.performance (realized RMSE per version, trend)
         ▼
    monitoring.policy.decide_retrain(verdict, settings.monitoring.retrain) (pure)
         ─► train_flow ─► evaluate_flow ─► `challenger`
              tags: trigger.report_uri = runs:/<monitor run>/drift/…

The check is the one `twinops monitor drift` runs (monitoring.check.run_check).

A retrained model is registered and gated to `challenger` at most: this flow
never moves `champion` (promotion needs the review step). `twinops monitor
serve --cron` serves this flow on a schedule with Prefect's `flow.serve`.
"""


from dataclasses import dataclass, field
from datetime import UTC, datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from features.settings import Settings
from monitoring.check import Verdict
from pipelines.flows import _settings, evaluate_flow, train_flow


@dataclass
class MonitorSummary:
    drift: bool
    share: float
    #: "" when no report was rendered (nothing tested: the verdict's reason says why).
    report_html: str
    report_json: str
    verdict_json: str
    monitor_run_id: str
    retrain: bool
    reasons: list[str]
    quality_issues: list[str] = field(default_factory=list)
    errors: dict | None = None
    drifted_columns: list[str] = field(default_factory=list)
    retrained_version: str | None = None
    challenger: bool = False


@task(cache_policy=NO_CACHE)
def monitoring_frames_task(settings: Settings, since: datetime | None):
    """(reference, current) MonitoredFrames: training assets' offline features vs the log."""
    import pandas as pd

    from features import datastore, store
    from features.prediction_log import utc_iso
    from monitoring.sources import TRUE_RUL, MonitoredFrame, load_monitored, with_true_rul

    current = load_monitored("predictions" + (f":{utc_iso(since)}" if since else ""), settings)
    reference = with_true_rul(
        pd.read_parquet(store.offline_path(settings)), datastore.load_readings(settings),
        datastore.load_events(settings), settings.rul_cap, settings.type.rul_per_cycle,
    ).dropna(subset=[TRUE_RUL])  # run-to-failure assets only: the training cohort
    return MonitoredFrame(reference, "raw", "offline features of run-to-failure assets"), current


@task(cache_policy=NO_CACHE)
def drift_check_task(settings: Settings, reference, current) -> Verdict:
    from monitoring.check import champion_stage, run_check

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    out = settings.reports_dir / f"drift-{stamp}" / "verdict.json"
    return run_check(settings, reference, current, out, champion=champion_stage(settings),
                     run_name=f"drift-{stamp}")


@task(cache_policy=NO_CACHE)
def error_trend_task(settings: Settings) -> dict | None:
    from monitoring.performance import error_facts, realized_errors, rmse_trend
    from training.registry import get_alias_version

    trend = rmse_trend(realized_errors(settings))
    facts = error_facts(trend, get_alias_version(settings, "champion"))
    return {"trend": trend, "champion": facts}


def last_monitor_retrain(settings: Settings) -> datetime | None:
    """Creation time of the newest version a monitor run triggered (the cooldown's clock)."""
    from training.registry import versions_tagged

    times = [v.created for v in versions_tagged(settings, "trigger.monitor_run")]
    return max(times) if times else None


@flow(name="monitor", log_prints=True)
def monitor_flow(
    settings: Settings | None = None,
    retrain_on_drift: bool = True,
    since: datetime | None = None,
    lookback_hours: float | None = None,
) -> MonitorSummary:
    """Drift (life-stage matched) + realized error trend → pure policy → retrain to challenger.

    `lookback_hours` (for schedules) monitors the predictions of the last hours only.
    """
    from datetime import timedelta

    from monitoring.policy import decide_retrain

    settings = _settings(settings)
    if lookback_hours is not None:
        since = datetime.now(UTC) - timedelta(hours=lookback_hours)
    reference, current = monitoring_frames_task(settings, since)
    verdict = drift_check_task(settings, reference, current)
    errors = error_trend_task(settings)
    decision = decide_retrain(
        verdict, settings.monitoring.retrain, now=datetime.now(UTC),
        last_retrain_at=last_monitor_retrain(settings), new_rows=len(current.features),
        errors=errors["champion"],
    )
    summary = MonitorSummary(
        drift=verdict.drift, share=verdict.share, drifted_columns=list(verdict.drifted_columns),
        report_html=verdict.report_html or "", report_json=verdict.report_json or "",
        verdict_json=verdict.verdict_json, monitor_run_id=verdict.mlflow_run_id,
        retrain=decision.retrain, reasons=list(decision.reasons),
        quality_issues=verdict.quality_issues, errors=errors["champion"],
    )
    print(f"drift={summary.drift} ({', '.join(verdict.drifted_columns) or 'none'}) "
          f"errors={errors['champion']} → retrain={decision.retrain} {decision.reasons}")
    if decision.retrain and retrain_on_drift:
        run_id = verdict.mlflow_run_id
        trained = train_flow(settings, extra_tags={
            "trigger.monitor_run": run_id,
            "trigger.report_uri": f"runs:/{run_id}/drift/verdict.json",
            "trigger.report_html_uri": f"runs:/{run_id}/drift/verdict.evidently.html",
            "trigger.drift_report": verdict.verdict_json,
            "trigger.reasons": "; ".join(decision.reasons)[:4000],
        })
        gate = evaluate_flow(trained.version, settings)
        summary.retrained_version = trained.version
        summary.challenger = bool(gate["passed"])
    return summary
