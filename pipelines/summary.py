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
        return f"v{promoted['version']}  (promoted; {promoted.get('approved_by', '-')})"
    champion = summary.get("champion")
    candidate = summary["train"]["version"]
    if champion:
        return f"v{champion}  (kept: v{candidate} was not promoted)"
    return f"none  (v{candidate} was not promoted)"


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
        f"registered model    {settings.model_name} v{train['version']}  "
        f"gates {'passed' if summary['gate']['passed'] else 'FAILED'}  "
        f"review report {summary['gate'].get('report', '-')}",
        f"champion            {_champion_line(summary)}",
        f"quarantined rows    {summary['live_ingest'].get('rows_quarantined', 0)} (live) "
        f"→ {summary['live_ingest'].get('quarantine_file') or 'none'}",
        f"drift report        {monitor.get('report_html', '-')}",
        f"drift verdict       drift={monitor.get('drift')} share={monitor.get('share')} "
        f"retrain={monitor.get('retrain')} {monitor.get('reasons', '')}",
    ]
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
