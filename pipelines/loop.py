"""The whole loop on the embedded default, as one Prefect flow.

ingest(simulator) ─► features ─► train ─► evaluate ─► promote (demo approval)
  ─► ingest(simulator-live, with sensor faults [+ drift]) ─► features ─► score ─► monitor
                                                               (drift ─► retrain ─► challenger)
"""

from __future__ import annotations

import json
from dataclasses import asdict

from prefect import flow

from features.settings import Settings
from pipelines.flows import (
    _settings,
    evaluate_flow,
    features_flow,
    ingest_flow,
    promote_flow,
    score_flow,
    train_flow,
)
from pipelines.monitor_flow import monitor_flow


@flow(name="run", log_prints=True)
def run_flow(settings: Settings | None = None, live_drift: str | None = None) -> dict:
    """The whole loop on the embedded default: simulate → … → monitor (→ retrain).

    A candidate the gates refuse does not stop the loop: the champion it would have
    replaced (if any) keeps serving, so scoring and monitoring run against that one.
    """
    from training.registry import get_alias_version

    settings = _settings(settings)
    ingest = ingest_flow("simulator", settings)
    features_flow(settings)
    trained = train_flow(settings)
    verdict = evaluate_flow(trained.version, settings)
    promoted = (
        promote_flow(trained.version, demo_auto_approve=True, settings=settings)
        if verdict["passed"]
        else None
    )
    # The live feed carries realistic sensor faults so the quarantine is exercised.
    live_source = "simulator-live:faults" + (f",{live_drift}" if live_drift else "")
    live = ingest_flow(live_source, settings)
    features_flow(settings)
    champion = get_alias_version(settings, "champion")
    scored = score_flow(settings=settings) if champion else []
    monitored = monitor_flow(settings) if scored else None
    summary = {
        "ingest": asdict(ingest),
        "live_ingest": asdict(live),
        "train": asdict(trained),
        "gate": verdict,
        "promoted": promoted,
        "champion": champion,
        "scored_assets": scored,
        "monitor": asdict(monitored) if monitored else None,
    }
    out = settings.reports_dir / "last_run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str))
    return summary
