"""The model artifact: a plain directory that rebuilds an `RULPredictor` without pickle.

    <dir>/
      weights.safetensors   state_dict of RULNet (+ damage-law params), safetensors format
      model.json            architecture, feature_columns, scaler mean/std, rul_cap,
                            interval_level, conformal calibration, physics params, metadata

    save_artifact(dir, net, spec) ──► dir ──► sha256_of_dir(dir)  (tag on the registry version)
                                      │
                                      └──► load_predictor(dir) ──► RULPredictor.predict(_array)

Why not torch.save / pickle: a model file is untrusted input on the serving side, and
unpickling executes code. safetensors holds only tensors; everything else is JSON.
Why a directory hash: the registry stores `artifact_sha256`; serving recomputes it on the
downloaded directory and refuses to load anything that was altered after registration.

The predictor is on the serving path, so `predict_array` is a thin numpy/torch path with
no pandas; `predict` only selects columns, checks them and wraps the result.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from features.contract import PREDICTION_COLUMNS
from training.conformal import ConformalCalibration

WEIGHTS_FILE = "weights.safetensors"
SPEC_FILE = "model.json"
#: The layout of model.json + weights this code reads; load_predictor refuses any other.
FORMAT_VERSION = 2
OUTPUT_COLUMNS = list(PREDICTION_COLUMNS)


@dataclass
class ModelSpec:
    """Everything except the weights that is needed to rebuild and use the model."""

    n_features: int
    hidden_size: int
    feature_columns: list[str]
    scaler_mean: list[float]
    scaler_std: list[float]
    rul_cap: float
    interval_level: float
    calibration: dict
    n_layers: int = 2
    dropout: float = 0.0
    #: RUL units per cycle of the asset type (features.asset_types.AssetType.rul_per_cycle):
    #: what one step of the age axis is worth in RUL, for the physics checks.
    rul_per_cycle: float = 1.0
    n_members: int = 1
    #: Cross-fitting (training.datamodule): member k never trained on the assets of fold
    #: k mod n_folds; `asset_folds` maps each run-to-failure training asset to its fold.
    #: 0 / {} for a model without folds (then nothing can be predicted out of fold).
    n_folds: int = 0
    asset_folds: dict = field(default_factory=dict)
    physics: dict = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        n = self.n_features
        if not (len(self.feature_columns) == len(self.scaler_mean) == len(self.scaler_std) == n):
            raise ValueError(
                "feature_columns, scaler_mean and scaler_std must have n_features entries"
            )


def sha256_of_dir(path: str | Path) -> str:
    """sha256 over the sorted (relative POSIX path, file bytes) of every file under `path`.

    Path and content are length-prefixed so that moving bytes between names changes the hash.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"not a directory: {root}")
    h = hashlib.sha256()
    files = [p for p in root.rglob("*") if p.is_file()]
    for p in sorted(files, key=lambda q: q.relative_to(root).as_posix()):
        rel = p.relative_to(root).as_posix().encode()
        data = p.read_bytes()
        h.update(len(rel).to_bytes(8, "big") + rel)
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()


def save_artifact(path: str | Path, net, spec: ModelSpec) -> Path:
    """Write weights.safetensors + model.json into `path` (created; must be empty or absent)."""
    from safetensors.torch import save_file

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise FileExistsError(f"artifact directory is not empty: {out}")
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE), metadata={"format": "twinops-rulnet"})
    (out / SPEC_FILE).write_text(json.dumps(asdict(spec), indent=1, sort_keys=True))
    return out


def load_predictor(path: str | Path) -> RULPredictor:
    """Rebuild the predictor from an artifact directory (safetensors + JSON, no pickle)."""
    import torch
    from safetensors.torch import load_file

    from training.network import RULNet

    root = Path(path)
    raw = json.loads((root / SPEC_FILE).read_text())
    if raw.get("format_version", 1) != FORMAT_VERSION:
        raise ValueError(
            f"artifact format {raw.get('format_version', 1)} != {FORMAT_VERSION} of this code"
        )
    spec = ModelSpec(**raw)
    net = RULNet(
        spec.n_features,
        spec.hidden_size,
        n_layers=spec.n_layers,
        dropout=spec.dropout,
        rul_scale=spec.rul_cap,
        n_members=spec.n_members,
    )
    net.load_state_dict(load_file(str(root / WEIGHTS_FILE)), strict=True)
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return RULPredictor(net, spec, torch_module=torch)


class RULPredictor:
    """Network + scaler + conformal calibration; predictions with intervals and p_fail."""

    def __init__(self, net, spec: ModelSpec, torch_module=None) -> None:
        if torch_module is None:
            import torch as torch_module
        self._torch = torch_module
        self.net = net.eval()
        self.spec = spec
        self.feature_columns: list[str] = list(spec.feature_columns)
        self._mean = np.asarray(spec.scaler_mean, dtype=np.float32)
        self._inv_std = (1.0 / np.asarray(spec.scaler_std, dtype=np.float64)).astype(np.float32)
        self.calibration = ConformalCalibration.from_dict(spec.calibration)

    @property
    def interval_level(self) -> float:
        return float(self.spec.interval_level)

    @property
    def physics_params(self) -> dict:
        return dict(self.spec.physics)

    def raw(
        self, x: np.ndarray, folds: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Point RUL and health for an already validated (n, n_features) float array.

        `folds` (one int per row, -1 = none): rows with a fold are predicted by the members
        that held that fold out in training (out of fold), the others by all members.
        """
        from training.network import member_folds, out_of_fold_mean

        torch = self._torch
        z = (np.asarray(x, dtype=np.float32) - self._mean) * self._inv_std
        # A missing optional sensor's features are NaN: imputed with the training mean
        # (0 once standardised), as the trainer did (training.datamodule.Standardizer).
        z = torch.from_numpy(np.ascontiguousarray(np.nan_to_num(z, nan=0.0)))
        with torch.inference_mode():
            if folds is None or not (np.asarray(folds) >= 0).any():
                rul, health = self.net(z)
            else:
                members = self.net.members(z)  # (K, n) each
                f = torch.from_numpy(np.asarray(folds, dtype=np.int64))
                member_fold = member_folds(self.spec.n_members, self.spec.n_folds)
                rul, health = (out_of_fold_mean(v, member_fold, f) for v in members)
        return rul.numpy().astype(np.float64), health.numpy().astype(np.float64)

    def folds_of(self, asset_ids) -> np.ndarray:
        """Fold of each asset id in training (-1 for assets the model never trained on)."""
        folds = self.spec.asset_folds
        return np.array([folds.get(str(a), -1) for a in asset_ids], dtype=np.int64)

    def predict_array(
        self,
        x: np.ndarray,
        horizon: float,
        level: float | None = None,
        folds: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """Fast path: (n, n_features) array in `feature_columns` order -> dict of 1-d arrays.

        `folds`: see `raw` (evaluation only; serving predicts with every member).
        """
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x.reshape(1, -1)
        if x.ndim != 2 or x.shape[1] != len(self.feature_columns):
            raise ValueError(
                f"expected shape (n, {len(self.feature_columns)}), got {tuple(x.shape)}"
            )
        bad = np.isinf(x)  # NaN is a missing sensor's feature (imputed in `raw`); inf is a bug
        if bad.any():
            cols = [self.feature_columns[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise ValueError(
                f"{int(bad.any(axis=1).sum())} row(s) have infinite features in columns: {cols}"
            )
        level = self.interval_level if level is None else float(level)
        rul, health = self.raw(x, folds)
        lower, upper = self.calibration.interval(rul, level)
        return {
            "rul": rul,
            "rul_lower": lower,
            "rul_upper": upper,
            "interval_level": np.full(rul.shape, level),
            "p_fail": self.calibration.p_fail(rul, float(horizon)),
            "health": health,
        }

    def predict(
        self,
        features_df,
        horizon: float,
        level: float | None = None,
        out_of_fold: bool = False,
    ):
        """Frame with the feature columns (extras ignored) -> DataFrame of OUTPUT_COLUMNS.

        The output keeps the input index, so callers can join back asset ids.
        `out_of_fold` (needs `asset_id`): each training asset is predicted only by the
        members that never trained on it, so evaluating on training assets is honest;
        other assets get the full ensemble, as in serving.
        """
        import pandas as pd

        missing = [c for c in self.feature_columns if c not in features_df.columns]
        if missing:
            raise ValueError(f"missing feature columns: {missing}")
        x = features_df[self.feature_columns].to_numpy(dtype=np.float64, na_value=np.nan)
        folds = self.folds_of(features_df["asset_id"]) if out_of_fold else None
        out = self.predict_array(x, horizon, level, folds)
        return pd.DataFrame(out, index=features_df.index, columns=OUTPUT_COLUMNS)
