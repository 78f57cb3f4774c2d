"""What `twinops run` prints at the end: where to look next.

run_flow summary ─► MLflow run + version, drift report, serve command, curl
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from features.settings import Settings


def _champion_line(summary: dict) -> str:
    """Who serves after this run: the new version, the one that stayed, or nobody."""
    promoted = summary.get("promoted") or {}
    if promoted:
        return (f"v{promoted['champion']}  (candidate v{promoted['version']} promoted; "
                f"{promoted.get('approved_by', '-')})")
    champion = summary.get("champion")
    candidate = summary["train"]["version"]
    if champion:
        return f"v{champion}  (kept: candidate v{candidate} was not promoted)"
    return f"none  (candidate v{candidate} was not promoted)"


def _alert_lines(alerts: dict, orders: dict) -> list[str]:
    """Where this run's alerts and work-order proposals went (docs/alerts.md,
    docs/work-orders.md): the channels, else the store a person reads them from."""
    from collections import Counter

    if not alerts and not orders:
        return []
    raised = Counter(a["kind"] for a in alerts.get("raised", []))
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(raised.items())) or "none new"
    went = (f"{len(alerts.get('notified', []))} notified via {', '.join(alerts['targets'])}"
            if alerts.get("targets") else
            "no notification block configured (alerts.notify)")
    lines = [f"alerts              {sum(raised.values())} raised ({kinds}), "
             f"{alerts.get('repeated', 0)} already open; {went}; all in {alerts.get('store')} "
             "(twinops alerts list)"]
    delivery = orders.get("delivery") or {}
    if "proposed" in orders:
        target = (f"posted to {delivery['cmms']}: {delivery.get('delivered', 0)} delivered, "
                  f"{delivery.get('pending', 0)} pending" if delivery.get("cmms") else
                  "kept in the outbox: no CMMS configured (work_orders.cmms_url)")
        lines.append(f"work orders         {orders['proposed']} proposed for a person "
                     f"({orders.get('already_proposed', 0)} already open); {target} "
                     "(twinops work-orders list)")
    elif orders.get("error"):
        lines.append(f"work orders         failed: {orders['error']}")
    return lines


def where_to_look(settings: Settings, summary: dict) -> str:
    train = summary["train"]
    monitor = summary.get("monitor") or {}
    asset = (summary.get("scored_assets") or ["<asset-id>"])[0]
    host, port = settings.serving.host, settings.serving.port
    body = json.dumps({"asset_ids": [asset]})
    lines = [
        "",
        "── twinops: the loop ran ─────────────────────────────────────────",
        f"state directory     {settings.state_dir}",
        f"trained on (DVC)    data {train.get('data_hash') or summary['ingest'].get('data_hash')}",
        f"data now (DVC)      data {summary['live_ingest'].get('data_hash')}  (data.dvc)",
        f"MLflow run          {train['run_id']}  (tracking URI {settings.tracking_uri})",
        f"candidate           {settings.candidates_model_name} v{train['version']}  "
        f"gates {'passed' if summary['gate']['passed'] else 'FAILED'}  "
        f"review report {summary['gate'].get('report', '-')}",
        f"champion            {settings.model_name} {_champion_line(summary)}",
        f"quarantined rows    {summary['live_ingest'].get('rows_quarantined', 0)} (live) "
        f"→ {summary['live_ingest'].get('quarantine_file') or 'none'}",
        f"drift report        {monitor.get('report_html', '-')}",
        f"drift verdict       drift={monitor.get('drift')} share={monitor.get('share')} "
        f"retrain={monitor.get('retrain')} {monitor.get('reasons', '')}",
    ]
    lines += _alert_lines(monitor.get("alerts") or {}, monitor.get("work_orders") or {})
    if monitor.get("retrained_version"):
        lines.append(
            f"retrained           v{monitor['retrained_version']} (challenger at most; "
            "champion unchanged)"
        )
    lines += [
        "",
        "browse experiments:",
        f"  {shlex.quote(str(Path(sys.executable).parent / 'mlflow'))} ui "
        f"--backend-store-uri {settings.tracking_uri} --port 5000",
        "serve the champion (API keys off: an explicit local-demo setting; see docs/serving.md):",
        f"  TWINOPS_STATE_DIR={shlex.quote(str(settings.state_dir))} "
        "TWINOPS_SERVING__AUTH_ENABLED=false "
        f"{shlex.quote(str(Path(sys.executable).parent / 'twinops'))} serve "
        f"--host {host} --port {port}",
        "then get a prediction:",
        f"  curl -s -X POST http://{host}:{port}/predict -H 'Content-Type: application/json' "
        f"-d '{body}'",
    ]
    return "\n".join(lines)
