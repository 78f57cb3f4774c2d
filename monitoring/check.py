"""One drift check, one path: stage → verdict → quality → prediction drift → files → MLflow.

    reference MonitoredFrame ─┐
    current   MonitoredFrame ─┼─► run_check ─► life stage on both rows (champion | ridge | cycle)
    champion predictor|None ──┘        │
                                       ├─► stage_matched_test ─► drift, columns, stage bins (timed)
                                       ├─► data_quality (missing / out of range / frozen)
                                       ├─► prediction drift (predicted RUL; informational)
                                       ▼
      Verdict ─► F.json + Evidently report of the rows in the tested bins (F.evidently.html/.json)
                                       └─► MLflow run "<experiment>-monitoring" (log_check)

`twinops monitor drift` and the monitor flow both call `run_check` and read
the typed `Verdict` it returns, so a check means the same thing, and lands
in the same files and MLflow run, whoever starts it.

Which stage variable, and why (monitoring/drift.py's docstring: remaining
life is the stage that matters). With a champion, its predicted
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
an ageing fleet moves it by design.

The report: Evidently renders, for people, the data of exactly the stage
bins the verdict tested — the current rows inside them, and reference rows
drawn per bin in the current's proportions. A report binned differently
would show a comparison the verdict never made. The verdict stays the stage
test's (rows are not independent draws — see monitoring/verdict.py), and
rendering is kept out of the timed part.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from monitoring.sources import TRUE_RUL, MonitoredFrame

if TYPE_CHECKING:
    import pandas as pd

    from features.settings import Settings

STAGE = "life_stage"


@dataclass(frozen=True)
class Verdict:
    """One check's result: what the verdict JSON holds, plus where its files and run went."""

    drift: bool
    #: Share of the tested columns that drifted.
    share: float
    #: column -> {statistic (p-value), threshold (alpha/m), shift, method, drifted}
    columns: dict[str, dict[str, Any]]
    drifted_columns: tuple[str, ...]
    rule: str
    #: Which life-stage estimate matched the two sides (see add_life_stage).
    stage: str
    #: Edges of the life-stage bins tested; the Evidently report shows the rows in them.
    stage_bins: tuple[float, ...]
    #: Share of current rows in life stages the reference lacks (not tested).
    unmatched_share: float
    skipped_columns: tuple[str, ...]
    #: Why the verdict is what it is when no per-column test could run.
    reason: str
    n_reference: int
    n_current: int
    n_reference_assets: int
    #: Current assets the test compared: its sample, and what the policy's min_rows counts.
    n_current_assets: int
    verdict_seconds: float
    #: data_quality's {ok, issues, columns}.
    quality: dict[str, Any]
    prediction: dict[str, Any]
    reference_source: str
    current_source: str
    verdict_json: str | None = None
    report_html: str | None = None
    report_json: str | None = None
    render_seconds: float | None = None
    mlflow_run_id: str | None = None

    @property
    def quality_issues(self) -> list[str]:
        return list(self.quality["issues"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists when dumped)."""
        return asdict(self)

    def headline(self) -> dict[str, Any]:
        """What a person reads first; `twinops monitor drift` prints it."""
        keys = ("drift", "share", "drifted_columns", "stage", "unmatched_share",
                "n_current_assets", "verdict_json", "report_html", "mlflow_run_id")
        return {k: getattr(self, k) for k in keys} | {"quality_issues": self.quality_issues}


def monitored_columns(reference: pd.DataFrame, current: pd.DataFrame, asset_type) -> list[str]:
    """The window means of the type's sensors and its settings, where both frames have them."""
    from features.transforms import sensor_features

    wanted = (*sensor_features(asset_type.sensor_columns, "mean"), *asset_type.setting_columns)
    return [c for c in wanted if c in reference.columns and c in current.columns]


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
    asset_type,
    *,
    champion: Callable[[pd.DataFrame], np.ndarray] | None = None,
    alpha: float = 0.01,
    min_shift: float = 0.25,
    n_bins: int = 10,
) -> tuple[Verdict, pd.DataFrame, pd.DataFrame]:
    """The verdict (no files yet) and the two frames with their life stage; the monitored
    columns are those of `asset_type` (features.asset_types)."""
    from monitoring.quality import data_quality
    from monitoring.verdict import stage_matched_test

    columns = monitored_columns(reference.features, current.features, asset_type)
    if not columns:
        raise ValueError("reference and current share no monitored column")
    ref, cur, stage = add_life_stage(reference, current, columns, champion)
    import scipy.stats  # noqa: F401  (a slow one-off import; kept out of the timed verdict)

    started = time.perf_counter()
    test = stage_matched_test(ref, cur, columns, STAGE, n_bins=n_bins, alpha=alpha,
                              min_shift=min_shift)
    seconds = time.perf_counter() - started
    if reference.readings is not None and current.readings is not None:
        quality = data_quality(reference.readings, current.readings,
                               asset_type.sensor_columns)
    else:
        quality = data_quality(ref, cur, columns)
    verdict = Verdict(
        drift=test.drift,
        share=test.share,
        columns=test.columns,
        drifted_columns=tuple(c for c, v in test.columns.items() if v["drifted"]),
        rule=f"drift if any column's p < alpha/m (alpha={alpha}, Bonferroni) and "
             f"|shift| >= {min_shift} within-stage std",
        stage=stage,
        stage_bins=test.bin_edges,
        unmatched_share=test.unmatched_share,
        skipped_columns=tuple(test.skipped_columns),
        reason=test.reason,
        n_reference=len(ref),
        n_current=len(cur),
        n_reference_assets=test.n_reference_assets,
        n_current_assets=test.n_current_assets,
        verdict_seconds=seconds,
        quality=quality,
        prediction=prediction_drift(ref, cur),
        reference_source=reference.source,
        current_source=current.source,
    )
    return verdict, ref, cur


def in_tested_bins(verdict: Verdict, cur: pd.DataFrame) -> pd.DataFrame:
    """The current rows the verdict tested: those inside its life-stage bins."""
    from monitoring.verdict import bin_index

    if not verdict.stage_bins:
        return cur.iloc[:0]
    inside = bin_index(cur[STAGE].to_numpy(float), np.asarray(verdict.stage_bins)) >= 0
    return cur[inside]


def write_check(
    verdict: Verdict, ref: pd.DataFrame, cur: pd.DataFrame, out: Path, *,
    render: bool = True, column_threshold: float | None = None,
) -> Verdict:
    """Write the verdict JSON at `out` and (render=True) Evidently's HTML + JSON beside it.

    The report compares the current rows in the tested bins with reference rows drawn on
    the same bins (drift_report's `stage_edges`). Nothing tested (no column, or no current
    row in a stage the reference has): no report, the verdict's `reason` says why.
    """
    from features import atomic
    from monitoring.drift import drift_report

    out.parent.mkdir(parents=True, exist_ok=True)
    tested = in_tested_bins(verdict, cur)
    if render and verdict.columns and len(tested):
        started = time.perf_counter()
        evidently = drift_report(ref, tested, [*verdict.columns, STAGE], out.parent,
                                 stage_column=STAGE, stage_edges=verdict.stage_bins,
                                 column_threshold=column_threshold,
                                 name=f"{out.stem}.evidently")
        verdict = replace(verdict, report_html=str(evidently.html_path),
                          report_json=str(evidently.json_path),
                          render_seconds=time.perf_counter() - started)
    verdict = replace(verdict, verdict_json=str(out))
    written = {k: v for k, v in verdict.to_dict().items() if k != "mlflow_run_id"}
    atomic.write_text(out, json.dumps(written, indent=1, default=str))
    return verdict


def run_check(
    settings: Settings,
    reference: MonitoredFrame,
    current: MonitoredFrame,
    out: Path,
    *,
    champion: Callable[[pd.DataFrame], np.ndarray] | None = None,
    render: bool = True,
    log: bool = True,
    run_name: str | None = None,
) -> Verdict:
    """The check with settings.monitoring's knobs, its files at `out`, its MLflow run.

    `champion` (champion_stage(settings), or None) scores the life stage. `log=False`
    leaves MLflow out (benchmarks, tests): `mlflow_run_id` stays None.
    """
    m = settings.monitoring
    verdict, ref, cur = drift_check(reference, current, settings.type, champion=champion,
                                    alpha=m.alpha,
                                    min_shift=m.min_shift)
    verdict = write_check(verdict, ref, cur, out, render=render,
                          column_threshold=m.column_threshold)
    if log:
        run_id = log_check(settings, verdict.to_dict(), run_name or f"drift-{out.stem}")
        verdict = replace(verdict, mlflow_run_id=run_id)
    return verdict


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
    from pipelines.approvals import load_champion
    from training.registry import get_alias_version

    if get_alias_version(settings, "champion") is None:
        return None
    model = load_champion(settings)

    def predict(frame: pd.DataFrame) -> np.ndarray:
        # out of fold: reference units the champion trained on get honest stages too
        out = model.predictor.predict(frame, horizon=settings.horizon, out_of_fold=True)
        return out["rul"].to_numpy()

    return predict
