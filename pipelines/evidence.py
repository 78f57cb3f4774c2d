"""Evidence for a promotion review: candidate vs champion on the same pinned units.

    candidate run ─► split.json (the units it predicts out of sample) ─┐
    offline features (Feast parquet) + RUL labels from the event table ─┴─► evaluation frame
        │  pinned by (DVC data hash, unit list) — both recorded, so it can be re-run
        ▼
    per model: metrics (RMSE, PHM08, MAE, coverage, width), RMSE by true-RUL band,
               calibration curve (nominal vs empirical coverage), physics checks
               (RUL >= 0, health in [0,1], monotone damage, time consistency),
               predictions (for the report's plots and per-asset table; `cut_weight`:
               each row's weight in the cut figures, training.truncation), the params,
               metrics and recorded user of its training run, the units it trained on

Both models predict out of fold (training.artifact.RULPredictor.predict): a unit either
model trained on is predicted only by the ensemble members that never saw it, so both are
compared on data they did not learn from. The physics checks look at the served function
(every member) on the same units: they are about how the model behaves, not its error.
Metrics come from training.evaluate (the code that scores a model in training), so a
reviewer sees the numbers the platform decides on. The target is capped like in training;
coverage is scored on the uncapped RUL the intervals are calibrated on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from features.settings import Settings

#: True-RUL bands (cycles) for "error by band": near failure matters most.
RUL_BANDS: list[tuple[float, float]] = [(0, 25), (25, 50), (50, 75), (75, 125), (125, np.inf)]
CALIBRATION_LEVELS: list[float] = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


@dataclass
class ModelEvidence:
    version: str
    metrics: dict[str, float]
    rmse_by_band: dict[str, float]
    calibration: dict[float, float]
    physics: dict[str, float]
    predictions: pd.DataFrame = field(repr=False)
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    #: What the training run logged (val_rmse, val_constant_rmse, ...): the floor gate's input.
    training_metrics: dict[str, float] = field(default_factory=dict)
    #: Channel (sensor, setting, age) -> mean |contribution| to the RUL over a sample of the
    #: evaluation rows (serving.explain.global_importance), largest first.
    sensor_importance: dict[str, float] = field(default_factory=dict)
    #: The training run's params (its configuration: epochs, learning rate, the feature set
    #: it kept, physics, members, ...): what the report diffs against the champion's.
    params: dict[str, str] = field(default_factory=dict)
    #: The user the tracking server recorded as the run's creator (run.info.user_id).
    run_user: str = ""
    #: The run-to-failure units its training saw (its run's split.json), sorted: the
    #: report's "units added or removed since the champion".
    trained_units: list[str] = field(default_factory=list)


@dataclass
class Evidence:
    candidate: ModelEvidence
    champion: ModelEvidence | None
    units: list[str]
    #: the DVC version of data/ whose labels the evaluation read (versioned by gather)
    data_hash: str | None
    notes: list[str] = field(default_factory=list)


def evaluation_frame(settings: Settings, units: list[str], data) -> pd.DataFrame:
    """Labelled feature rows of the run-to-failure `units`, labelled from `data` (a
    features.versioning.DataVersion: the readings and events of one DVC version)."""
    from features import store
    from features.labels import rul_labels

    labels = rul_labels(data.readings, data.events, per_cycle=settings.type.rul_per_cycle)
    features = pd.read_parquet(store.offline_path(settings))
    frame = features.merge(labels[["asset_id", "cycle", "rul"]], on=["asset_id", "cycle"])
    frame = frame[frame["asset_id"].isin(units)]
    return frame.sort_values(["asset_id", "cycle"], kind="stable").reset_index(drop=True)


def pinned_units(settings: Settings, candidate_run: str) -> list[str]:
    """The units the candidate predicts out of sample (its run's split.json).

    The champion needs no exclusions: it predicts out of fold too, so a unit it trained
    on is answered by its members that never saw it.
    """
    from training.registry import load_run_dict

    return sorted(load_run_dict(settings, candidate_run, "split.json")["val_assets"])


def physics_checks(frame: pd.DataFrame, predictions: pd.DataFrame, cap: float,
                   per_cycle: float = 1.0) -> dict[str, float]:
    """Physics on held-out trajectories: bounds, monotone damage, time consistency (RUL
    falls by the time elapsed: cycles x `per_cycle`, the type's RUL units per cycle)."""
    asset = frame["asset_id"].astype(str).to_numpy()
    cycle = frame["cycle"].to_numpy(dtype=float)
    true = frame["rul"].to_numpy(dtype=float)
    rul = predictions["rul"].to_numpy(dtype=float)
    health = predictions["health"].to_numpy(dtype=float)
    pair = (asset[1:] == asset[:-1]) & (cycle[1:] > cycle[:-1])
    linear = pair & (true[:-1] <= cap)
    # damage = 1 - health must not fall: health rising by more than 1% is a reversal
    reversal = (health[1:] - health[:-1] > 0.01) & pair
    residual = rul[:-1] - rul[1:] - (cycle[1:] - cycle[:-1]) * per_cycle
    return {
        "min_rul": float(rul.min()),
        "min_health": float(health.min()),
        "max_health": float(health.max()),
        "damage_reversal_share": float(reversal.sum() / max(pair.sum(), 1)),
        "time_consistency_residual": float(np.sqrt(np.mean(residual[linear] ** 2)))
        if linear.any() else 0.0,
    }


def model_evidence(settings: Settings, loaded, frame: pd.DataFrame) -> ModelEvidence:
    from training import metrics as M
    from training.evaluate import evaluate
    from training.registry import run_metrics
    from training.truncation import cut_weights

    predictor = loaded.predictor
    horizon = settings.horizon
    cap = float(predictor.spec.rul_cap)
    metrics = evaluate(predictor, frame, horizon=horizon, out_of_fold=True)
    predictions = predictor.predict(frame, horizon=horizon, out_of_fold=True)
    target = np.minimum(frame["rul"].to_numpy(dtype=float), cap)
    bands = {}
    for lo, hi in RUL_BANDS:
        mask = (frame["rul"].to_numpy() >= lo) & (frame["rul"].to_numpy() < hi)
        if mask.any():
            bands[f"{lo:g}-{hi:g}"] = M.rmse(target[mask], predictions["rul"].to_numpy()[mask])
    calibration = {}
    for level in CALIBRATION_LEVELS:
        out = predictor.predict(frame, horizon=horizon, level=level, out_of_fold=True)
        calibration[level] = M.interval_coverage(frame["rul"].to_numpy(dtype=float),
                                                 out["rul_lower"], out["rul_upper"])
    # the row weights of evaluate's cut_* figures (the same call), so the report's per-asset
    # and per-band errors are the gates' scoring broken down, not a different one
    weights = cut_weights(frame["asset_id"].astype(str).to_numpy(),
                          frame["cycle"].to_numpy(dtype=float),
                          frame["rul"].to_numpy(dtype=float),
                          float(getattr(predictor.spec, "rul_per_cycle", 1.0)))
    predictions = predictions.assign(asset_id=frame["asset_id"].to_numpy(),
                                     cycle=frame["cycle"].to_numpy(),
                                     true_rul=frame["rul"].to_numpy(), cut_weight=weights)
    # Physics checks are properties of the function that is served (every member): a
    # two-member out-of-fold mean is noisier from one cycle to the next than what apps get.
    served = predictor.predict(frame, horizon=horizon)
    return ModelEvidence(
        version=loaded.version, metrics=metrics, rmse_by_band=bands, calibration=calibration,
        physics=physics_checks(frame, served, cap, settings.type.rul_per_cycle),
        predictions=predictions,
        tags=dict(loaded.tags), run_id=loaded.run_id,
        training_metrics=run_metrics(settings, loaded.run_id),
        sensor_importance=_sensor_importance(predictor, frame),
        **_run_record(settings, loaded.run_id),
    )


def _run_record(settings: Settings, run_id: str) -> dict:
    """The training run's params, its server-recorded user and the units it trained on;
    empty where the run lacks them (a run from before split.json was logged)."""
    from mlflow.exceptions import MlflowException

    # training.registry has no public reader for a run's params and user (yet); its client
    # is the one every MLflow call goes through (tracking URI, relocated state dir)
    from training.registry import _client, load_run_dict

    run = _client(settings).get_run(run_id)
    try:
        units = sorted(str(u) for u in load_run_dict(settings, run_id, "split.json")["val_assets"])
    except (MlflowException, OSError, KeyError):
        units = []
    return {"params": dict(run.data.params), "run_user": run.info.user_id or "",
            "trained_units": units}


#: Evaluation rows the global sensor importance is computed on (~1.5 ms of CPU each).
IMPORTANCE_ROWS = 1000


def _sensor_importance(predictor, frame: pd.DataFrame) -> dict[str, float]:
    """The served function's global sensor importance on a seeded sample of the frame;
    {} for a predictor without a network."""
    from serving.explain import global_importance

    if getattr(predictor, "net", None) is None:
        return {}
    return global_importance(predictor, frame, max_rows=IMPORTANCE_ROWS)


def gather(settings: Settings, version: str) -> Evidence:
    """Evaluate candidate `version` (of the candidates model) and the current champion (of
    the serving model, if any) on the same pinned units."""
    from features.versioning import version_and_read
    from training.registry import get_alias_version, load_version

    candidate = load_version(settings, version, model=settings.candidates_model_name)
    champion_version = get_alias_version(settings, "champion")
    champion, notes = None, []
    if champion_version:
        try:
            champion = load_version(settings, champion_version)
        except (ValueError, RuntimeError, LookupError) as exc:
            # a champion this code cannot load (tampered, another artifact format) must not
            # block the review of a candidate: the report says it was not compared
            notes.append(f"champion v{champion_version} could not be loaded ({exc}); "
                         "the candidate was NOT compared with it")
    units = pinned_units(settings, candidate.run_id)
    # the report names the data it evaluated on: versioned now, as training versions it
    data = version_and_read(settings)
    frame = evaluation_frame(settings, units, data)
    if frame.empty:
        raise RuntimeError(f"no labelled evaluation rows for units {units}")
    return Evidence(
        candidate=model_evidence(settings, candidate, frame),
        champion=model_evidence(settings, champion, frame) if champion else None,
        units=sorted(frame["asset_id"].astype(str).unique()),
        data_hash=data.data_hash,
        notes=notes,
    )
