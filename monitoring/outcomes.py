"""Outcome KPIs from feedback: did the warnings come in time, and what did the plant pay.

    events (failure / maintenance, from `twinops feedback` / POST /feedback)
        ─► lives: each asset's life ends at a failure or a planned maintenance
    risk alerts (monitoring.alert_store: asset, when the reading behind it was taken, version)
        ─► per ended life: the first risk alert inside it (after the previous end)
    ─► per model version:
        warned failures, missed failures (a failure with no risk alert in its life before it),
        warning lead time (failure time − first alert's reading time: hours, and the RUL unit
        where the type has a time per unit),
        false alarms (a risk alert whose asset neither failed nor was maintained within the
        horizon after it, and the horizon has passed), alerts awaiting the horizon (not yet),
        realised cost (failures at their cost, maintenances at theirs) against run to failure
        (every ended life at the failure cost)

Which version a life belongs to: the version behind its first risk alert, else the version
that last predicted for the asset before the end (the prediction log). A life no version
predicted for (a training unit's, or one that ended before serving began) is no model's
outcome: it is left out, not counted as a missed failure. Clocks: every time here is the
plant's (reading and event times), never the monitor's wall clock, so a replayed history
gives the same figures.

Why cost per ended life and not a cost rate: a maintained life is shorter than it would
have been, and how much longer it would have run is not observed. The cost rate with the
counterfactual lives is what `twinops benchmark maintenance` measures on simulated fleets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from features.maintenance import MaintenanceProfile

FAILURE, MAINTENANCE = "failure", "maintenance"


def ended_lives(events: pd.DataFrame) -> pd.DataFrame:
    """One row per life that ended: asset_id, started (previous end or NaT), ended, how
    ("failure" | "maintenance"), cycle at the end."""
    import pandas as pd

    ends = events[events["event"].astype(str).isin([FAILURE, MAINTENANCE])].copy()
    if not len(ends):
        return pd.DataFrame(columns=["asset_id", "started", "ended", "how", "cycle"])
    ends["asset_id"] = ends["asset_id"].astype(str)
    ends["ended"] = pd.to_datetime(ends["timestamp"], utc=True)
    ends = ends.sort_values(["asset_id", "ended"], kind="mergesort")
    ends["started"] = ends.groupby("asset_id")["ended"].shift(1)
    return ends.rename(columns={"event": "how"})[
        ["asset_id", "started", "ended", "how", "cycle"]].reset_index(drop=True)


def _first_alert_in(lives: pd.DataFrame, risk: pd.DataFrame) -> pd.DataFrame:
    """`lives` with the first risk alert inside each (alert_at, alert_version; NaT if none)."""
    out = lives.copy()
    out["alert_at"], out["alert_version"] = None, None
    by_asset = {a: g.sort_values("at") for a, g in risk.groupby("asset_id")}
    at, version = [], []
    for life in out.itertuples():
        group = by_asset.get(life.asset_id)
        inside = None
        if group is not None:
            mask = group["at"] <= life.ended
            if life.started is not None and not _missing(life.started):
                mask &= group["at"] > life.started
            hits = group[mask]
            inside = hits.iloc[0] if len(hits) else None
        at.append(inside["at"] if inside is not None else None)
        version.append(str(inside["model_version"]) if inside is not None else None)
    out["alert_at"], out["alert_version"] = at, version
    return out


def _missing(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def outcome_kpis(
    events: pd.DataFrame,
    alerts: pd.DataFrame,
    predictions: pd.DataFrame,
    profiles: dict[str, MaintenanceProfile],
    *,
    horizon_s: float | None,
    seconds_per_unit: float | None = None,
    now=None,
) -> list[dict[str, Any]]:
    """KPI rows, one per model version (lives no version predicted for are left out).

    events: asset_id, timestamp, event. alerts: asset_id, kind, at (UTC time of the reading
    behind the alert), model_version; only kind == "risk" counts as a warning.
    predictions: asset_id, at, model_version (the prediction log). horizon_s: the alert's
    horizon in seconds (None: no time per RUL unit, so false alarms are not judged).
    """
    import pandas as pd

    now = pd.Timestamp(now) if now is not None else pd.Timestamp.now(tz="UTC")
    risk = alerts[alerts["kind"].astype(str) == "risk"].copy()
    risk["asset_id"] = risk["asset_id"].astype(str)
    risk["at"] = pd.to_datetime(risk["at"], utc=True)
    lives = _first_alert_in(ended_lives(events), risk)
    lives["version"] = [v if v is not None else _last_version(predictions, a, t)
                        for v, a, t in zip(lives["alert_version"], lives["asset_id"],
                                           lives["ended"], strict=True)]
    lives = lives[lives["version"].notna()]
    verdicts = _judge_alerts(risk, lives, horizon_s, now)
    rows = []
    for version in sorted(set(lives["version"]) | set(verdicts["model_version"].astype(str))):
        mine = lives[lives["version"] == version]
        failed = mine[mine["how"] == FAILURE]
        warned = failed[failed["alert_at"].notna()]
        lead_h = ((pd.to_datetime(warned["ended"], utc=True)
                   - pd.to_datetime(warned["alert_at"], utc=True)).dt.total_seconds() / 3600.0)
        judged = verdicts[verdicts["model_version"].astype(str) == version]
        realised = sum(_cost(profiles.get(a), how) for a, how in zip(
            mine["asset_id"], mine["how"], strict=True))
        rtf = sum(_cost(profiles.get(a), FAILURE) for a in mine["asset_id"])
        rows.append({
            "model_version": version, "lives_ended": len(mine), "failures": len(failed),
            "maintenances": int((mine["how"] == MAINTENANCE).sum()),
            "warned_failures": len(warned), "missed_failures": len(failed) - len(warned),
            "lead_time_h_median": float(lead_h.median()) if len(lead_h) else None,
            "lead_time_h_min": float(lead_h.min()) if len(lead_h) else None,
            "lead_time_median": (float(lead_h.median()) * 3600.0 / seconds_per_unit
                                 if len(lead_h) and seconds_per_unit else None),
            "risk_alerts": len(judged),
            "false_alarms": int((judged["verdict"] == "false_alarm").sum()),
            "alerts_awaiting_horizon": int((judged["verdict"] == "pending").sum()),
            "realised_cost": realised if np.isfinite(realised) else None,
            "run_to_failure_cost": rtf if np.isfinite(rtf) else None,
            "cost_vs_run_to_failure": (realised / rtf if np.isfinite(realised)
                                       and np.isfinite(rtf) and rtf > 0 else None),
        })
    return rows


def _cost(profile, how: str) -> float:
    """What one ended life cost; NaN when the asset has no prices (the total is then
    unknown, and reported as such rather than as a too-small figure)."""
    if profile is None or not profile.priced:
        return float("nan")
    return profile.failure_total if how == FAILURE else profile.planned_total


def _last_version(predictions: pd.DataFrame, asset: str, ended) -> str | None:
    import pandas as pd

    if not len(predictions):
        return None
    mine = predictions[(predictions["asset_id"].astype(str) == asset)
                       & (pd.to_datetime(predictions["at"], utc=True) <= ended)]
    if not len(mine):
        return None
    return str(mine.sort_values("at", kind="mergesort")["model_version"].iloc[-1])


def _judge_alerts(risk: pd.DataFrame, lives: pd.DataFrame, horizon_s: float | None,
                  now) -> pd.DataFrame:
    """Each risk alert: "warned" (its asset failed within the horizon), "acted_on" (it was
    maintained within the horizon), "false_alarm" (neither, and the horizon has passed),
    "pending" (neither yet) or "unjudged" (no horizon in time)."""
    import pandas as pd

    out = risk[["asset_id", "at", "model_version"]].copy()
    verdict = []
    for alert in out.itertuples():
        if horizon_s is None:
            verdict.append("unjudged")
            continue
        until = alert.at + pd.Timedelta(seconds=horizon_s)
        ends = lives[(lives["asset_id"] == alert.asset_id) & (lives["ended"] >= alert.at)
                     & (lives["ended"] <= until)]
        if (ends["how"] == FAILURE).any():
            verdict.append("warned")
        elif len(ends):
            verdict.append("acted_on")
        else:
            verdict.append("false_alarm" if until <= now else "pending")
    out["verdict"] = verdict
    return out


def outcomes_of(settings, now=None) -> list[dict[str, Any]]:
    """outcome_kpis of settings' asset type from its stores: events, the alert store, the
    prediction log (reading times) and the assets' maintenance profiles."""
    import pandas as pd

    from features.datastore import load_events
    from features.maintenance import profiles_of
    from features.prediction_log import PredictionLog
    from monitoring.alert_store import load_alerts

    events = load_events(settings)
    alerts = load_alerts(settings)
    alerts = alerts[alerts["asset_type"].astype(str) == settings.asset_type]
    # the plant's clock: when the reading behind a risk alert was taken (raised_at is the
    # monitor's wall clock, which a replayed or late feed puts far from the reading)
    age_s = pd.to_numeric(alerts["evidence"].map(
        lambda e: (e or {}).get("last_reading_age_s")), errors="coerce").fillna(0.0)
    alerts = alerts.assign(at=pd.to_datetime(alerts["raised_at"], utc=True)
                           - pd.to_timedelta(age_s, unit="s"))
    predictions = pd.DataFrame(columns=["asset_id", "at", "model_version"])
    if settings.prediction_log_path.exists():
        log = PredictionLog(settings.prediction_log_path)
        try:
            read = log.read(model_name=settings.model_name)
        finally:
            log.close()
        if len(read):
            at = (pd.to_datetime(read["feature_timestamp"], utc=True, errors="coerce")
                  if "feature_timestamp" in read else read["logged_at"])
            predictions = pd.DataFrame({"asset_id": read["asset_id"].astype(str),
                                        "at": at.fillna(read["logged_at"]),
                                        "model_version": read["model_version"].astype(str)})
    kind = settings.type
    per_unit = kind.seconds_per_rul_unit
    return outcome_kpis(events, alerts, predictions,
                        profiles_of(settings, events["asset_id"].astype(str).unique()),
                        horizon_s=settings.horizon * per_unit if per_unit else None,
                        seconds_per_unit=per_unit, now=now)
