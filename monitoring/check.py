"""One drift check: stage estimate → verdict → data quality → prediction drift → report files.

    reference MonitoredFrame ─┐
    current   MonitoredFrame ─┼─► life stage on both rows (champion RUL | ridge RUL | cycle)
    champion predictor|None ──┘        │
                                       ├─► stage_matched_test ─► drift, share, columns  (timed)
                                       ├─► data_quality (missing / out of range / frozen)
                                       ├─► prediction drift (predicted RUL; informational)
                                       ▼
      verdict JSON (F.json) + Evidently report of the stage-matched data (F.evidently.html/.json)
                                       └─► MLflow run "<experiment>-monitoring" (log_check)

Which stage variable, and why (measured in monitoring/drift.py's docstring:
remaining life is the stage that matters). With a champion, its predicted
RUL scores *both* sides — one model, so equal stage means the same thing on
both. Without one, a ridge regression of the capped RUL fitted on the
reference's labelled rows (monitoring/stage.py). Without labels either,
cycle, and the verdict says so (`stage`).

Monitored columns: the window means of the sensors and the operating
settings — one column per physical signal, so the verdict is "which
sensors changed". Slopes are derivatives of the same signals and noisier;
the model's other inputs are not tested separately.

Prediction drift: the predicted RUL distribution of current vs reference
is reported (K-S) but never drives the verdict — it *is* the life stage, and
an ageing fleet moves it by design. Evidently renders the stage-matched
data for people to look at; the verdict is the stage test's (its rows
are not independent draws — see monitoring/verdict.py), and rendering is
kept out of the timed part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitoring.sources import TRUE_RUL, MonitoredFrame

if TYPE_CHECKING:
    import pandas as pd

    from features.settings import Settings

STAGE = "life_stage"


def monitored_columns(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    from features.contract import SETTING_COLUMNS
    from features.transforms import MEAN_COLUMNS

    return [c for c in (*MEAN_COLUMNS, *SETTING_COLUMNS)
            if c in reference.columns and c in current.columns]


def add_life_stage(
    reference: MonitoredFrame,
    current: MonitoredFrame,
    columns: list[str],
    champion: Callable[[pd.DataFrame], np.ndarray] | None,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Both frames with a `life_stage` column; returns which estimate was used."""
    ref, cur = reference.features.copy(), current.features.copy()
    if champion is not None:
        ref[STAGE], cur[STAGE] = champion(ref), champion(cur)
        return ref, cur, "champion_predicted_rul"
    if reference.labelled:
        from monitoring.stage import fit_ridge_stage

        labelled = ref[ref[TRUE_RUL].notna()]
        predict = fit_ridge_stage(labelled, labelled[TRUE_RUL].to_numpy(), columns)
        ref[STAGE], cur[STAGE] = predict(ref), predict(cur)
        return ref, cur, "ridge_rul_fitted_on_reference"
    ref[STAGE], cur[STAGE] = ref["cycle"].astype(float), cur["cycle"].astype(float)
    return ref, cur, "cycle (weak: no champion and no labelled reference rows)"


def prediction_drift(ref: pd.DataFrame, cur: pd.DataFrame) -> dict[str, Any]:
    from scipy import stats

    r, c = ref[STAGE].to_numpy(float), cur[STAGE].to_numpy(float)
    ks = stats.ks_2samp(c[np.isfinite(c)], r[np.isfinite(r)])
    return {
        "column": "predicted RUL (life stage)",
        "reference_mean": float(np.nanmean(r)),
        "current_mean": float(np.nanmean(cur[STAGE])),
        "ks_statistic": float(ks.statistic),
        "ks_p_value": float(ks.pvalue),
        "in_verdict": False,
        "note": "the stage variable moves as the fleet ages; shown, never an alarm by itself",
    }


def drift_check(
    reference: MonitoredFrame,
    current: MonitoredFrame,
    *,
    champion: Callable[[pd.DataFrame], np.ndarray] | None = None,
    alpha: float = 0.01,
    min_shift: float = 0.25,
    n_bins: int = 10,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """The verdict dict (JSON-ready) and the two frames with their life stage."""
    from monitoring.quality import data_quality
    from monitoring.verdict import stage_matched_test

    columns = monitored_columns(reference.features, current.features)
    if not columns:
        raise ValueError("reference and current share no monitored column")
    ref, cur, stage = add_life_stage(reference, current, columns, champion)
    import scipy.stats  # noqa: F401  (a one-off ~1 s import; kept out of the timed verdict)

    started = time.perf_counter()
    test = stage_matched_test(ref, cur, columns, STAGE, n_bins=n_bins, alpha=alpha,
                              min_shift=min_shift)
    seconds = time.perf_counter() - started
    if reference.readings is not None and current.readings is not None:
        from features.contract import SENSOR_COLUMNS

        quality = data_quality(reference.readings, current.readings, SENSOR_COLUMNS)
    else:
        quality = data_quality(ref, cur, columns)
    verdict = {
        "drift": test.drift,
        "share": test.share,
        "columns": test.columns,
        "drifted_columns": [c for c, v in test.columns.items() if v["drifted"]],
        "rule": f"drift if any column's p < alpha/m (alpha={alpha}, Bonferroni) and "
                f"|shift| >= {min_shift} within-stage std",
        "stage": stage,
        "unmatched_share": test.unmatched_share,
        "skipped_columns": test.skipped_columns,
        "reason": test.reason,
        "n_reference": len(ref),
        "n_current": len(cur),
        "n_reference_assets": test.n_reference_assets,
        "n_current_assets": test.n_current_assets,
        "verdict_seconds": seconds,
        "quality": quality,
        "prediction": prediction_drift(ref, cur),
        "reference_source": reference.source,
        "current_source": current.source,
    }
    return verdict, ref, cur


def write_check(
    verdict: dict[str, Any], ref: pd.DataFrame, cur: pd.DataFrame, out: Path, *,
    render: bool = True,
) -> dict[str, Any]:
    """Write the verdict JSON at `out` and (render=True) Evidently's HTML + JSON beside it."""
    from monitoring.drift import _atomic_write_text, drift_report

    out.parent.mkdir(parents=True, exist_ok=True)
    if render:
        started = time.perf_counter()
        columns = [c for c in verdict["columns"]] + [STAGE]
        evidently = drift_report(ref, cur, columns, out.parent, stage_column=STAGE,
                                 name=f"{out.stem}.evidently")
        verdict = {**verdict, "report_html": str(evidently.html_path),
                   "report_json": str(evidently.json_path),
                   "render_seconds": time.perf_counter() - started}
    _atomic_write_text(out, json.dumps(verdict, indent=1, default=str))
    return {**verdict, "verdict_json": str(out)}


def log_check(settings: Settings, verdict: dict[str, Any], run_name: str) -> str:
    """Log the check (metrics + every file) to MLflow's monitoring experiment; the run id."""
    from training.registry import log_run

    return log_run(
        settings, f"{settings.experiment_name}-monitoring", run_name,
        metrics={
            "drift": float(verdict["drift"]),
            "drift_share": float(verdict["share"]),
            "rows": float(verdict["n_current"]),
            "quality_issues": float(len(verdict["quality"]["issues"])),
        },
        tags={"stage": verdict["stage"], "reference": verdict["reference_source"],
              "current": verdict["current_source"]},
        artifacts={"drift": [verdict[key] for key in ("verdict_json", "report_html",
                                                      "report_json") if verdict.get(key)]},
    )


def champion_stage(settings: Settings) -> Callable[[pd.DataFrame], np.ndarray] | None:
    """The champion's predicted RUL as a stage function, or None when there is no champion."""
    from training.registry import get_alias_version, load_by_alias

    if get_alias_version(settings, "champion") is None:
        return None
    model = load_by_alias(settings, "champion")

    def predict(frame: pd.DataFrame) -> np.ndarray:
        # out of fold: reference units the champion trained on get honest stages too
        out = model.predictor.predict(frame, horizon=settings.serving.horizon, out_of_fold=True)
        return out["rul"].to_numpy()

    return predict
