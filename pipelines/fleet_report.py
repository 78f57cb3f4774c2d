"""The fleet page: one self-contained HTML page a maintenance planner looks at.

    every served type ─► serving.fleet.fleet_risk (ranked) ─► the top N per type
                                 └► serving.fleet.recommend_assets (their proposals)
    ─► render_fleet_html ─► reports/fleet-<UTC time>.html ─► MLflow run (experiment
                                                             `<prefix>-fleet`, folder "fleet")

Sections per asset type: the risk ranking (risk, p_fail, RUL interval, last reading,
data quality, the top 3 drivers of the RUL (serving.explain), the recommended action and
why) and the maintenance windows on a timeline
(from now to the planned time, the latest safe time marked), the open alerts
(monitoring.alert_store) and the outcomes per model version (monitoring.outcomes). The
timeline is a PNG inlined as a data URI, so the file opens anywhere, the MLflow artifact
viewer included.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from pipelines.review_report import _CSS, _png, _table

ACTION_CLASS = {"stop_now": "fail", "plan_maintenance": "warn", "inspect": "warn",
                "run": "pass"}


def _timeline(kind: str, unit: str, recs: list) -> str:
    """Horizontal bars: now -> due_in per asset with a plan; a tick at latest_safe_in."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    planned = [r for r in recs if getattr(r, "due_in", None) is not None]
    if not planned:
        return f"<p>No {html.escape(kind)} asset has a planned maintenance.</p>"
    planned = sorted(planned, key=lambda r: r.due_in)
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(planned) + 1.2))
    colour = {"stop_now": "#b00020", "plan_maintenance": "#f0b400", "run": "#0a7d28"}
    for y, r in enumerate(planned):
        ax.barh(y, r.due_in, color=colour.get(r.action, "#888"), alpha=0.8)
        if r.latest_safe_in is not None:
            ax.plot([max(r.latest_safe_in, 0)], [y], "k|", markersize=14)
    ax.set_yticks(range(len(planned)), [f"{r.asset_id} ({r.action})" for r in planned],
                  fontsize=8)
    ax.invert_yaxis()
    ax.set(xlabel=f"{unit} from the last reading", title=f"{kind}: planned maintenance "
           "(bar: due; tick: latest safe, 5% risk of failing first)")
    return _png(fig)


def _alert_state(alert: dict, notifying: bool) -> str:
    if alert["acked_by"]:
        return f"acked by {alert['acked_by']}"
    if str(alert["notified_at"]) not in ("NaT", "None"):
        return "notified"
    return "pending notification" if notifying else "stored (no alerts.notify block)"


def _alerts_html(kind: str, alerts, notifying: bool = False) -> str:
    """The type's open alerts (monitoring.alert_store), newest first."""
    if alerts is None or not len(alerts):
        return f"<h3>{html.escape(kind)}: open alerts</h3><p>None.</p>"
    rows = [[a["alert_id"], a["severity"], a["kind"], a["asset_id"] or "fleet",
             f"{a['raised_at']:%Y-%m-%d %H:%M} UTC", _alert_state(a, notifying), a["message"]]
            for a in alerts.sort_values("raised_at", ascending=False).to_dict("records")]
    return (f"<h3>{html.escape(kind)}: open alerts ({len(rows)})</h3>"
            + _table(["alert", "severity", "kind", "asset", "raised", "state", "what"], rows)
            + "<p>Acknowledge with <code>twinops alerts ack ID --by NAME</code>.</p>")


def _outcomes_html(kind: str, outcomes: list[dict]) -> str:
    """Outcome KPIs per model version (monitoring.outcomes), from feedback."""
    if not outcomes:
        return (f"<h3>{html.escape(kind)}: outcomes</h3><p>No life has ended since "
                "feedback started (failures and maintenances: <code>twinops feedback</code>)."
                "</p>")

    def num(v, fmt="{:.1f}"):
        return "—" if v is None else fmt.format(v)

    rows = [[o["model_version"], o["lives_ended"], o["failures"], o["warned_failures"],
             o["missed_failures"], num(o["lead_time_h_median"]), o["false_alarms"],
             o["alerts_awaiting_horizon"], num(o["realised_cost"], "{:,.0f}"),
             num(o["run_to_failure_cost"], "{:,.0f}"),
             num(o["cost_vs_run_to_failure"], "{:.2f}")] for o in outcomes]
    return (f"<h3>{html.escape(kind)}: outcomes per model version</h3>"
            + _table(["version", "lives ended", "failures", "warned", "missed",
                      "lead time h (median)", "false alarms", "alerts in horizon", "cost",
                      "run-to-failure cost", "cost / RTF"], rows)
            + "<p>Warned: a risk alert came before the failure in the same life; lead time "
              "from the alert's reading to the failure. False alarm: neither a failure nor a "
              "maintenance within the horizon after a risk alert. Cost per ended life against "
              "every life ending in a failure (docs/alerts.md).</p>")


def render_fleet_html(sections: list[dict], generated: datetime) -> str:
    """`sections`: per type {"asset_type", "rul_unit", "total", "items" (RiskItem),
    "recommendations" {asset_id: Recommendation | PredictionError}}."""
    parts = []
    for sec in sections:
        kind, unit = sec["asset_type"], sec["rul_unit"]
        rows, recs = [], []
        for it in sec["items"]:
            rec = sec["recommendations"].get(it.asset_id)
            action = getattr(rec, "action", None)
            if action:
                recs.append(rec)
            why = rec.reasons[0] if action else (rec.error if rec is not None else "")
            rows.append([it.rank, it.asset_id,
                         "—" if it.risk is None else f"{it.risk:.3f}",
                         "—" if it.p_fail is None else f"{it.p_fail:.2f}",
                         "—" if it.rul is None else
                         f"{it.rul:.1f} [{it.rul_lower:.1f}, {it.rul_upper:.1f}]",
                         "—" if it.last_reading_age_s is None else
                         f"{it.last_reading_age_s / 3600:.1f} h ago",
                         it.data_quality, sec.get("drivers", {}).get(it.asset_id, "—"),
                         action or "—", why])
        table = _table(["rank", "asset", "risk", f"p_fail ({sec['horizon']:g} {unit})",
                        f"RUL [{unit}]", "last reading", "data", f"top drivers [{unit}]",
                        "action", "why"], rows)
        for action, css in ACTION_CLASS.items():
            table = table.replace(f"<td>{action}</td>", f'<td class="{css}">{action}</td>')
        parts.append(f"<h2>{html.escape(kind)}: the {len(rows)} highest risks of "
                     f"{sec['total']} assets in service</h2><p>{sec.get('out', 0)} failed and "
                     f"out of service (not reported since), left out.</p>"
                     f"{table}{_timeline(kind, unit, recs)}"
                     f"{_alerts_html(kind, sec.get('alerts'), sec.get('notifying', False))}"
                     f"{_outcomes_html(kind, sec.get('outcomes') or [])}")
    body = "".join(parts) or "<p>No asset type has a champion: nothing to rank.</p>"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>Fleet</title>
<style>{_CSS}.warn{{color:#8a6d00;font-weight:600}}td:last-child{{text-align:left}}</style></head><body><h1>Fleet</h1>
<p>Generated {generated.isoformat(timespec="seconds")}. Risk = probability of failure
within the horizon x the asset's criticality. Actions are proposals for a person: nothing
is scheduled. Top drivers: the 3 sensors (or settings, age) that move the asset's RUL most
away from the model's RUL for an average training state (negative: a shorter life;
docs/explanations.md).</p>{body}</body></html>"""


def top_drivers(ids: list[str], lanes: dict, type_of, n: int = 3) -> dict[str, str]:
    """asset id -> its `n` largest contributions, "sensor_11 -12.3, ...", by /predict's
    explain path (not logged: the page is no prediction a client acted on)."""
    from serving.predict import predict_fleet
    from serving.schemas import MAX_EXPLAINED, PredictRequest

    out = {}
    for start in range(0, len(ids), MAX_EXPLAINED):
        part = PredictRequest(asset_ids=ids[start:start + MAX_EXPLAINED], explain=True)
        for p in predict_fleet(part, lanes=lanes, type_of=type_of).predictions:
            if getattr(p, "explanation", None) is not None:
                out[p.asset_id] = ", ".join(f"{d.channel} {d.contribution:+.1f}"
                                            for d in p.explanation.top_drivers[:n])
    return out


def write_fleet_report(settings, top: int = 20) -> tuple[Path, str]:
    """Rank every served type, recommend for its top `top`, write the page and log it to
    MLflow. Returns (the HTML file, the MLflow run id)."""
    from features.datastore import asset_types_of, last_failures, load_assets
    from features.maintenance import criticality_of, profiles_of
    from serving.decision_schemas import FleetRiskRequest, RecommendRequest
    from serving.fleet import fleet_risk, local_lanes, recommend_assets
    from training.registry import log_run

    lanes = local_lanes(settings)
    assets = load_assets(settings)
    criticality = criticality_of(settings, assets)
    failed_at = last_failures(settings)
    from monitoring.alert_store import load_alerts
    from monitoring.outcomes import outcomes_of

    alerts = load_alerts(settings)
    alerts = alerts[alerts["closed_at"].isna()]
    sections = []
    for kind, lane in lanes.items():
        ranked = fleet_risk(FleetRiskRequest(asset_type=kind, page_size=top), lanes=lanes,
                            assets=assets, criticality=criticality, failed_at=failed_at)
        ids = [i.asset_id for i in ranked.items]
        recs = recommend_assets(RecommendRequest(asset_ids=ids), lanes=lanes,
                                type_of=lambda a: asset_types_of(settings, a),
                                profiles=profiles_of(settings, ids)).recommendations if ids \
            else []
        sections.append({"asset_type": kind, "rul_unit": lane.rul_unit, "horizon": lane.horizon,
                         "total": ranked.total, "out": ranked.out_of_service,
                         "items": ranked.items,
                         "drivers": top_drivers(ids, lanes,
                                                lambda a: asset_types_of(settings, a)),
                         "recommendations": {r.asset_id: r for r in recs},
                         "alerts": alerts[alerts["asset_type"].astype(str) == kind],
                         "notifying": bool(settings.alerts.notify),
                         "outcomes": outcomes_of(settings.for_type(kind))})
    now = datetime.now(UTC)
    path = Path(settings.reports_dir) / f"fleet-{now:%Y%m%dT%H%M%SZ}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_fleet_html(sections, now))
    counts = {f"{s['asset_type']}_{a}": sum(getattr(r, "action", None) == a
                                            for r in s["recommendations"].values())
              for s in sections for a in ACTION_CLASS}
    run_id = log_run(settings, f"{settings.model_prefix}-fleet", f"fleet {now:%Y-%m-%d %H:%M}",
                     params={"top": top, "types": ",".join(lanes)}, metrics=counts,
                     artifacts={"fleet": [path]})
    return path, run_id
