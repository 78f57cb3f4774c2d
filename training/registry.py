"""MLflow tracking + model registry for RUL models (aliases only, never stages).

    FitResult ──► log_and_register ──► MLflow run: params, metrics, physics params, plot
                        │                 └─► pyfunc model "model" (models from code:
                        │                     training/pyfunc_model.py + artifacts/model_dir
                        │                     + code path training/) ──► registered version N
                        │                     tags: dvc_data_hash, feature_service, git_commit,
                        │                           artifact_sha256, trained_by
                        ▼
    set_alias(settings, "challenger" | "champion", N)
                        ▼
    load_by_alias ──► download model ──► sha256_of_dir(model_dir) == tag? ──► load_predictor
                                                 └─ no ──► TamperedArtifactError

    reads:  list_versions / versions_tagged / version_tags / run_metrics / load_run_dict
    writes: tag_version, delete_alias, log_artifact (onto a run), log_run (a run of its own:
            the monitoring checks)

Why aliases: MLflow stages are deprecated; an alias is a movable, named pointer
(`models:/<name>@champion`) that serving resolves at load time, so promotion and rollback
are one registry call and need no redeploy.
Why verify a hash: the registry records what was reviewed; anything that changes the
artifact store afterwards (a bad copy, a tampered file) must not reach serving.
Why one module: every MLflow call of the platform goes through here, so the tracking
URI, the registry URI and the experiment's artifact location are set in one place
(`_client`) and no other module can talk to a different server than the one it reads.
mlflow is imported inside the functions: `import training.registry` stays cheap.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from training.identity import current_identity

TRAINING_DIR = Path(__file__).resolve().parent
PYFUNC_FILE = TRAINING_DIR / "pyfunc_model.py"
MODEL_NAME_IN_RUN = "model"
PIP_REQUIREMENTS = ["mlflow", "torch", "safetensors", "pandas", "numpy"]


class TamperedArtifactError(RuntimeError):
    """The downloaded model directory does not hash to the registered artifact_sha256."""


@dataclass(frozen=True)
class VersionInfo:
    """One registered version as the registry lists it (no artifact download)."""

    version: str
    run_id: str | None
    created: datetime
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass
class LoadedModel:
    predictor: object  # training.artifact.RULPredictor
    name: str
    version: str
    run_id: str | None
    tags: dict = field(default_factory=dict)


# ----------------------------------------------------------------- helpers
def _client(settings):
    import mlflow
    from mlflow import MlflowClient

    from features.relocate import ensure_state_root

    Path(settings.state_dir).mkdir(parents=True, exist_ok=True)
    # a moved or copied state dir: its stored artifact locations follow it first
    ensure_state_root(settings)
    # tqdm bars of artifact downloads are noise in service logs
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _experiment_id(settings, client, name: str | None = None) -> str:
    """Id of experiment `name` (default: the training experiment), created if missing."""
    name = name or settings.experiment_name
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    return client.create_experiment(name, artifact_location=settings.artifact_location)


def git_commit() -> str:
    """HEAD of the repository holding this code, or "unknown" (no git, no commit yet)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=TRAINING_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and sha else "unknown"


def _plot(val_predictions, path: Path) -> Path | None:
    """Predicted vs true RUL out of fold, with the conformal band; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    vp = val_predictions
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    ax = axes[0]
    ax.scatter(vp["rul_true"], vp["rul"], s=4, alpha=0.4)
    lim = [0, float(max(vp["rul_true"].max(), vp["rul"].max())) * 1.05]
    ax.plot(lim, lim, "k--", lw=1)
    ax.set(xlabel="true RUL (capped)", ylabel="predicted RUL",
           title="out of fold (members that never saw the asset)")
    ax = axes[1]
    for aid, g in list(vp.groupby("asset_id"))[:4]:
        line = ax.plot(g["cycle"], g["rul"], lw=1, label=str(aid))[0]
        ax.fill_between(
            g["cycle"], g["rul_lower"], g["rul_upper"], color=line.get_color(), alpha=0.15
        )
        ax.plot(g["cycle"], g["rul_true"], "--", color=line.get_color(), lw=1)
    ax.set(xlabel="cycle", ylabel="RUL", title="trajectories (dashed = truth, band = interval)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# --------------------------------------------------------------------- API
def log_and_register(
    settings,
    fit_result,
    *,
    dvc_hash: str | None,
    feature_service: str,
    extra_tags: dict | None = None,
) -> tuple[str, str]:
    """Log the run and register the pyfunc model as a version of the candidates model
    (`settings.candidates_model_name`; only an approval copies it into the serving model);
    returns (run_id, candidate version)."""
    import mlflow
    import numpy as np
    from mlflow.models import infer_signature

    from training.artifact import sha256_of_dir
    from training.pyfunc_model import PYFUNC_OUTPUT_COLUMNS

    client = _client(settings)
    exp_id = _experiment_id(settings, client)
    artifact_dir = Path(fit_result.artifact_dir)
    sha = sha256_of_dir(artifact_dir)
    predictor = fit_result.predictor
    cols = list(predictor.feature_columns)
    vp = fit_result.val_predictions
    # Input example: a few real held-out rows would need the frame; the scaler mean is a
    # valid, non-identifying row of the right dtype.
    example = _example_frame(predictor, cols, fit_result.feature_dtypes)
    horizon = float(settings.horizon)  # the type's, in its RUL unit (= the run's `horizon`)
    example_out = predictor.predict(example, horizon=horizon)[PYFUNC_OUTPUT_COLUMNS]
    signature = infer_signature(example, example_out, params={"horizon": horizon})
    tags = {
        "dvc_data_hash": dvc_hash or "unknown",
        "feature_service": feature_service,
        "git_commit": git_commit(),
        "artifact_sha256": sha,
        "trained_by": current_identity(settings).name,
        **{k: str(v) for k, v in (extra_tags or {}).items()},
    }
    with mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_params({k: _param(v) for k, v in fit_result.params.items()})
        metrics = {k: float(v) for k, v in fit_result.metrics.items() if np.isfinite(v)}
        metrics.update(
            {
                f"physics_{k}": float(v)
                for k, v in fit_result.physics_params.items()
                if isinstance(v, int | float)
            }
        )
        mlflow.log_metrics(metrics)
        mlflow.log_dict(fit_result.physics_params, "physics_params.json")
        # The units the model predicts out of sample: what a review evaluates it on.
        mlflow.log_dict({"val_assets": list(fit_result.val_assets)}, "split.json")
        mlflow.set_tags(tags)
        if vp is not None:
            with tempfile.TemporaryDirectory() as tmp:
                png = _plot(vp, Path(tmp) / "val_pred_vs_true.png")
                if png is not None:
                    mlflow.log_artifact(str(png), artifact_path="plots")
        info = mlflow.pyfunc.log_model(
            name=MODEL_NAME_IN_RUN,
            python_model=str(PYFUNC_FILE),
            artifacts={"model_dir": str(artifact_dir)},
            code_paths=[str(TRAINING_DIR)],
            signature=signature,
            input_example=example,
            pip_requirements=PIP_REQUIREMENTS,
            model_config={"horizon": horizon},
            registered_model_name=settings.candidates_model_name,
        )
        run_id = run.info.run_id
    version = str(info.registered_model_version)
    for k, v in tags.items():
        client.set_model_version_tag(settings.candidates_model_name, version, k, v)
    return run_id, version


def _example_frame(predictor, cols, dtypes: dict):
    """One row (the training mean) with the training frame's dtypes, so that the signature
    accepts what the feature store sends (e.g. an int64 `cycle`)."""
    import numpy as np
    import pandas as pd

    df = pd.DataFrame([predictor.spec.scaler_mean], columns=cols).astype("float64")
    for c, dt in dtypes.items():
        if c in df.columns and np.issubdtype(np.dtype(dt), np.integer):
            df[c] = df[c].round().astype(dt)
    return df


def _param(v):
    s = str(v)
    return s if len(s) <= 500 else s[:497] + "..."


def set_alias(settings, alias: str, version: str | int, *, model: str | None = None) -> None:
    """Point `alias` (e.g. "challenger", "champion") at `version` of `model` (default: the
    serving model)."""
    _client(settings).set_registered_model_alias(model or settings.model_name, alias,
                                                 str(version))


def get_alias_version(settings, alias: str, *, model: str | None = None) -> str | None:
    """Version the alias points to, or None when the model or alias does not exist."""
    from mlflow.exceptions import MlflowException

    try:
        mv = _client(settings).get_model_version_by_alias(model or settings.model_name, alias)
    except MlflowException:
        return None
    return str(mv.version)


def _model_dir_in(local_model: Path) -> Path:
    """Locate artifacts["model_dir"] inside a downloaded pyfunc model via its MLmodel file."""
    import yaml

    mlmodel = yaml.safe_load((local_model / "MLmodel").read_text())
    arts = mlmodel.get("flavors", {}).get("python_function", {}).get("artifacts", {})
    rel = (arts.get("model_dir") or {}).get("path", "artifacts/model_dir")
    return local_model / rel


def load_by_alias(settings, alias: str, dst_dir: str | Path | None = None, *,
                  model: str | None = None) -> LoadedModel:
    """Download `models:/<name>@<alias>`, verify artifact_sha256, load the predictor.

    Raises LookupError if the alias does not exist, TamperedArtifactError on a hash mismatch.
    `dst_dir` keeps the download (default: a temporary directory, removed once loaded or
    refused).
    """
    from mlflow.exceptions import MlflowException

    name = model or settings.model_name
    try:
        mv = _client(settings).get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        raise LookupError(f"no model version with alias {alias!r} for {name!r}") from exc
    return load_version(settings, mv.version, dst_dir, model=name)


def load_version(settings, version: str | int, dst_dir: str | Path | None = None, *,
                 model: str | None = None) -> LoadedModel:
    """Download one registered version, verify its artifact_sha256 tag, load the predictor.

    Without `dst_dir` the download goes to a temporary directory that is removed when this
    returns or raises: the predictor holds its weights in memory (training.artifact reads
    them whole), and a directory left per load filled /tmp with one per worker start and
    per hot swap.
    """
    if dst_dir is None:
        with tempfile.TemporaryDirectory(prefix="twinops-model-") as tmp:
            return _load_version(settings, version, Path(tmp), model)
    return _load_version(settings, version, Path(dst_dir), model)


def _load_version(settings, version: str | int, dst: Path, model: str | None) -> LoadedModel:
    import mlflow
    from mlflow.exceptions import MlflowException

    from training.artifact import load_predictor, sha256_of_dir

    name = model or settings.model_name
    try:
        mv = _client(settings).get_model_version(name, str(version))
    except MlflowException as exc:
        raise LookupError(f"no version {version} of {name!r}") from exc
    expected = mv.tags.get("artifact_sha256")
    if not expected:
        raise TamperedArtifactError(f"{name} v{mv.version} has no artifact_sha256 tag; refusing")
    local = Path(
        mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{name}/{mv.version}", dst_path=str(dst)
        )
    )
    model_dir = _model_dir_in(local)
    actual = sha256_of_dir(model_dir)
    if actual != expected:
        raise TamperedArtifactError(
            f"{name} v{mv.version}: artifact sha256 {actual} != registered {expected}; "
            "refusing to load"
        )
    return LoadedModel(
        predictor=load_predictor(model_dir),
        name=name,
        version=str(mv.version),
        run_id=mv.run_id,
        tags=dict(mv.tags),
    )


def tag_version(settings, version: str | int, tags: dict, *, model: str | None = None) -> None:
    """Set tags on a model version (the registry is where reviewers look)."""
    client = _client(settings)
    for key, value in tags.items():
        client.set_model_version_tag(model or settings.model_name, str(version), key, str(value))


def describe_version(settings, version: str | int, text: str, *,
                     model: str | None = None) -> None:
    """Set the version's description: the first thing the MLflow UI shows on its page."""
    _client(settings).update_model_version(model or settings.model_name, str(version),
                                           description=text)


def delete_alias(settings, alias: str, *, model: str | None = None) -> None:
    """Remove `alias` from the model (the server asks for MANAGE permission)."""
    _client(settings).delete_registered_model_alias(model or settings.model_name, alias)


def version_tags(settings, version: str | int, *, model: str | None = None) -> dict[str, str]:
    """Tags of one version; raises MlflowException when it does not exist."""
    name = model or settings.model_name
    return dict(_client(settings).get_model_version(name, str(version)).tags)


def version_run_user(settings, version: str | int, *, model: str | None = None) -> str:
    """The user recorded on the run that produced `version`: with the `twinops-auth`
    tracking server the authenticated user who created the run (the server refuses any
    other), never a tag anyone may set afterwards."""
    client = _client(settings)
    mv = client.get_model_version(model or settings.model_name, str(version))
    return client.get_run(mv.run_id).info.user_id if mv.run_id else ""


def copy_version(settings, version: str | int, *, source: str, model: str | None = None) -> str:
    """Copy `source` v`version` into `model` (default: the serving model) as a new version:
    same run, same artifacts (the new version's source is `models:/<source>/<version>`).
    Returns the new version number."""
    client = _client(settings)
    mv = client.get_model_version(source, str(version))
    return str(client.copy_model_version(f"models:/{source}/{mv.version}",
                                         model or settings.model_name).version)


def list_versions(settings, *, model: str | None = None) -> list[VersionInfo]:
    """Every registered version with its tags and aliases, oldest first ([] if none)."""
    from mlflow.exceptions import MlflowException

    client = _client(settings)
    name = model or settings.model_name
    try:
        found = client.search_model_versions(f"name='{name}'")
        aliases = client.get_registered_model(name).aliases if found else {}
    except MlflowException:
        return []
    by_version: dict[str, list[str]] = {}
    for alias, v in aliases.items():
        by_version.setdefault(str(v), []).append(alias)
    rows = [VersionInfo(version=str(v.version), run_id=v.run_id,
                        created=datetime.fromtimestamp(v.creation_timestamp / 1000, UTC),
                        tags=dict(v.tags or {}),
                        aliases=tuple(sorted(by_version.get(str(v.version), []))))
            for v in found]
    return sorted(rows, key=lambda r: int(r.version))


def versions_tagged(settings, tag: str, *, model: str | None = None) -> list[VersionInfo]:
    """The versions that carry `tag` (any value), oldest first."""
    return [v for v in list_versions(settings, model=model) if tag in v.tags]


def latest_version(settings, *, model: str | None = None) -> str | None:
    """Highest registered version number, or None when nothing is registered."""
    versions = list_versions(settings, model=model)
    return versions[-1].version if versions else None


def run_metrics(settings, run_id: str) -> dict[str, float]:
    """The metrics a run logged (last value of each)."""
    return dict(_client(settings).get_run(run_id).data.metrics)


def load_run_dict(settings, run_id: str, path: str) -> dict:
    """A JSON artifact of a run (e.g. "split.json" of a training run)."""
    import mlflow

    _client(settings)  # points mlflow.artifacts at this tracking server
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")


def log_artifact(settings, run_id: str, path: str | Path, artifact_path: str) -> None:
    """Add a file to an existing run, under `artifact_path`."""
    _client(settings).log_artifact(run_id, str(path), artifact_path=artifact_path)


def log_run(
    settings,
    experiment: str,
    run_name: str,
    *,
    params: Mapping[str, object] | None = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    artifacts: Mapping[str, Iterable[str | Path]] | None = None,
) -> str:
    """One finished run in `experiment` (created with the platform's artifact location if
    missing); `artifacts` maps a folder of the run to the files logged into it. Returns the
    run id."""
    import mlflow

    client = _client(settings)
    exp_id = _experiment_id(settings, client, experiment)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name) as run:
        if params:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
        if metrics:
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        if tags:
            mlflow.set_tags({k: str(v) for k, v in tags.items()})
        for folder, files in (artifacts or {}).items():
            for f in files:
                mlflow.log_artifact(str(f), artifact_path=folder)
        return run.info.run_id
