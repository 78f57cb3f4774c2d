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
After it, work_orders_task turns the at-risk assets' recommendations into work-order
proposals, stored in an outbox and posted to the CMMS (docs/work-orders.md).
alerts_task, also after the check, raises risk, sensor-health and drift alerts and
notifies them (monitoring.alert_store.run_alerts; docs/alerts.md).

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
    #: Alerts of this run (monitoring.alert_store.run_alerts): raised (new episodes),
    #: repeated, closed, notified / failed (kept pending) / throttled, where they went.
    alerts: dict = field(default_factory=dict)
    #: Work-order proposals of this run (serving.work_orders.propose_and_deliver): assets
    #: assessed, proposals new / already open, and their delivery to the CMMS ("cmms").
    work_orders: dict = field(default_factory=dict)


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
def alerts_task(settings: Settings, verdict: Verdict) -> dict:
    """Risk, sensor-health and drift alerts → episodes → notification blocks
    (docs/alerts.md). Never fails the monitor run: a part that fails is in `errors`."""
    from monitoring.alert_store import run_alerts

    return run_alerts(settings, verdict)


@task(cache_policy=NO_CACHE)
def error_trend_task(settings: Settings) -> dict | None:
    from monitoring.performance import error_facts, realized_errors, rmse_trend
    from training.registry import get_alias_version

    trend = rmse_trend(realized_errors(settings))
    facts = error_facts(trend, get_alias_version(settings, "champion"))
    return {"trend": trend, "champion": facts}


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=10)
def work_orders_task(settings: Settings, monitor_report: str = "",
                     monitor_run_id: str = "") -> dict:
    """At-risk assets → recommendations → work-order proposals → outbox → CMMS
    (docs/work-orders.md). Retries are safe: a stored proposal is not stored twice, and a
    failed delivery is the outbox's to retry, not an error of this task. The flow keeps
    going when it fails after its retries: the error is in MonitorSummary.work_orders."""
    from serving.work_orders import propose_and_deliver

    return propose_and_deliver(settings, monitor_report=monitor_report or None,
                               monitor_run_id=monitor_run_id or None)


def last_monitor_retrain(settings: Settings) -> datetime | None:
    """Creation time of the newest version a monitor run triggered (the cooldown's clock)."""
    from training.registry import versions_tagged

    times = [v.created for v in versions_tagged(settings, "trigger.monitor_run",
                                                model=settings.candidates_model_name)]
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
    alerts = alerts_task(settings, verdict)
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
        quality_issues=verdict.quality_issues, errors=errors["champion"], alerts=alerts,
    )
    orders = work_orders_task(settings, verdict.report_html or verdict.verdict_json,
                              verdict.mlflow_run_id, return_state=True)  # never fails the run
    summary.work_orders = orders.result() if orders.is_completed() else {"error": orders.message}
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
