"""LightningDataModule over a training frame: folds by asset, scale, pair consecutive cycles.

    frame[asset_id, cycle, rul (uncapped; NaN = unlabelled), *features]
        │ labelled assets (>= 1 finite rul) ── assign_folds (by asset, seeded): fold 0..F-1
        │ unlabelled assets (in service, never failed) ── fold -1: physics terms only
        │ virtual assets (training.augment, `virtual_parents`) ── their source's fold
        │   and their donor's (the asset whose lifetime they have), training rows only
        │   (never scaled on, validated or calibrated)
        ▼
    Standardizer fitted on every real training row's features (no labels involved)
        ▼
    PairArrays: x(t), x(next), capped y(t), y(next), dt, uncapped rul(t), has_next,
    labelled, fold, donor_fold, survived (cycles the asset was still seen running after t)
        ▼
    train loader: every row (the module masks each member's held-out fold)
    val loader:   labelled rows, consecutive pairs (predicted out of fold), each weighted
                  by training.truncation.cut_weights: the score of a random cut of life

Why folds (cross-fitting) rather than one validation split: ensemble member k of the
network holds out fold k mod F and trains on the others (training.module masks its loss).
Every labelled asset is then predicted *out of fold* by the members that never saw it, so
early stopping and the conformal calibration use all assets instead of a fifth of them, and
the served ensemble (the mean of all members) has learnt from every asset. With ~100
run-to-failure assets the single 20% split left 20 assets to pick the epoch and calibrate
intervals on; with 20 assets (the low-data regime) it left 4. This is the cross-validation
ensemble of CV+ conformal prediction (Barber, Candes, Ramdas, Tibshirani, "Predictive
inference with the jackknife+", Ann. Statist. 2021). Never by row: rows of one asset are
near-duplicates, a row split leaks.

Imports lightning at module level: import this module only inside functions (train.fit).

Each training row carries its successor (a later observed cycle of the same asset) so
the physics terms in `training.module` can compare predictions along a trajectory; the last
row of an asset points to itself with has_next = 0.

Why unlabelled rows: a fleet has few failures and many assets still in service. Their RUL
is unknown, so the data term cannot use them, but the physics still holds on them (RUL falls
by one per cycle, damage never heals): they are the PINN's collocation points (Raissi et al.
2019), and the only place where physics adds information that the labels do not already
carry. The data-only baseline ignores them by construction.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import lightning as L
import numpy as np

from training.truncation import cut_weights

ASSET_ID = "asset_id"
CYCLE = "cycle"
RUL = "rul"
TIMESTAMP = "timestamp"
NON_FEATURE_COLUMNS = (ASSET_ID, TIMESTAMP, RUL)


def infer_feature_columns(frame) -> list[str]:
    """All float/int numeric columns except asset_id, timestamp and rul (cycle is kept)."""
    import pandas as pd

    return [
        c
        for c in frame.columns
        if c not in NON_FEATURE_COLUMNS
        and pd.api.types.is_numeric_dtype(frame[c])
        and not pd.api.types.is_bool_dtype(frame[c])
    ]


#: Fold id of rows that no member holds out (unlabelled assets: physics terms only).
NO_FOLD = -1


def assign_folds(assets, n_folds: int, seed: int) -> dict[str, int]:
    """Deterministic asset -> fold (0..F-1) map; F = min(n_folds, assets), every fold non-empty."""
    ids = sorted({str(a) for a in assets})
    if len(ids) < 2:
        raise ValueError("need at least 2 run-to-failure assets to predict any of them out of fold")
    if n_folds < 2:
        raise ValueError(f"n_folds must be >= 2, got {n_folds}")
    folds = min(int(n_folds), len(ids))
    order = np.random.default_rng(seed).permutation(len(ids))
    return {ids[i]: rank % folds for rank, i in enumerate(order)}


@dataclass
class Standardizer:
    """Per-column mean/std fitted on training rows; constant columns get std 1.

    Missing values (the NaN features of a missing optional sensor) are left out of the fit
    and become 0 after the transform: imputed with the training mean, the value that moves
    the network least (training.artifact does the same at prediction time).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: mean 0, std 1
            mean = np.nan_to_num(np.nanmean(x, axis=0), nan=0.0)
            std = np.nan_to_num(np.nanstd(x, axis=0), nan=0.0)
        std = np.where(std > 1e-8, std, 1.0)
        return cls(mean.astype(np.float64), std.astype(np.float64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.nan_to_num((x - self.mean) / self.std, nan=0.0).astype(np.float32)


@dataclass
class PairArrays:
    """Rows of one split with their successor rows (numpy; tensors are made on demand)."""

    x: np.ndarray
    x_next: np.ndarray
    y: np.ndarray  # capped target at t
    y_next: np.ndarray
    dt: np.ndarray
    rul_raw: np.ndarray  # uncapped true RUL at t (decides the plateau mask); 0 if unlabelled
    has_next: np.ndarray
    labelled: np.ndarray  # 1.0 where the RUL is known
    fold: np.ndarray  # int64 fold of the row's asset; NO_FOLD for unlabelled assets
    #: int64 second fold a virtual row is held out with (its donor's); NO_FOLD on real rows
    donor_fold: np.ndarray
    survived: np.ndarray  # cycles from t to the asset's last reading: a lower bound on RUL(t)
    asset_id: np.ndarray
    cycle: np.ndarray
    #: float32 weight of the row in the validation RMSE (training.truncation.cut_weights:
    #: the expected error at a random cut of each unit's life); 1 on training rows
    weight: np.ndarray | None = None

    def tensors(self):
        import torch

        return tuple(
            torch.from_numpy(np.ascontiguousarray(a))
            for a in (
                self.x,
                self.x_next,
                self.y,
                self.y_next,
                self.dt,
                self.rul_raw,
                self.has_next,
                self.labelled,
                self.fold,
                self.donor_fold,
                self.survived,
                self.weight if self.weight is not None else np.ones_like(self.y),
            )
        )


def build_pairs(
    frame,
    feature_columns: list[str],
    scaler: Standardizer,
    cap: float,
    max_gap: int = 1,
    seed: int = 0,
    folds: dict[str, int] | None = None,
    donor_folds: dict[str, int] | None = None,
    per_cycle: float = 1.0,
) -> PairArrays:
    """Sort by (asset, cycle), scale features, link every row to a later row of its asset.

    The partner is `k` readings ahead, k drawn uniformly from 1..max_gap (capped by what is
    left of the asset's history; seeded). max_gap = 1 links consecutive readings. Why long
    gaps: over one cycle a slope error of 20% in the predicted RUL is a 0.2-cycle residual,
    lost next to the data term; over 50 cycles it is 10 cycles, as loud as a prediction
    error of 10 cycles. The time-consistency law holds for any gap.
    `folds` maps asset -> fold, `donor_folds` virtual asset -> its donor's fold; assets not
    in them get NO_FOLD. `per_cycle` (RUL units per cycle) puts dt and the survival time in
    the RUL's units, as the time-consistency law needs (an hours type ages in periods).
    """
    df = frame.sort_values([ASSET_ID, CYCLE], kind="stable")
    x = scaler.transform(df[feature_columns].to_numpy(dtype=np.float64))
    rul = df[RUL].to_numpy(dtype=np.float64)
    labelled = np.isfinite(rul)
    rul = np.where(labelled, rul, 0.0)
    y = np.minimum(rul, cap).astype(np.float32)
    asset = df[ASSET_ID].astype(str).to_numpy()
    cycle = df[CYCLE].to_numpy(dtype=np.float64)
    n = len(df)
    rows = np.arange(n)
    # rows left in the asset after each row (0 for its last row)
    new_asset = np.r_[True, asset[1:] != asset[:-1]] if n else np.zeros(0, dtype=bool)
    starts = np.flatnonzero(new_asset)
    ends = np.r_[starts[1:], n] if n else starts
    end_of = np.repeat(ends, np.diff(np.r_[starts, n])) if n else rows
    left = end_of - rows - 1
    gap = np.random.default_rng(seed).integers(1, max(1, int(max_gap)) + 1, size=n)
    gap = np.minimum(gap, left)
    nxt = rows + gap
    has_next = gap > 0
    has_next &= cycle[nxt] > cycle
    nxt = np.where(has_next, nxt, rows)
    dt = (np.where(has_next, cycle[nxt] - cycle, 0.0) * per_cycle).astype(np.float32)
    survived = ((cycle[end_of - 1] - cycle) * per_cycle).astype(np.float32) if n else (
        np.zeros(0, np.float32))
    return PairArrays(
        x=x,
        x_next=x[nxt],
        y=y,
        y_next=y[nxt],
        dt=dt,
        rul_raw=rul.astype(np.float32),
        has_next=has_next.astype(np.float32),
        labelled=labelled.astype(np.float32),
        fold=np.array([(folds or {}).get(a, NO_FOLD) for a in asset], dtype=np.int64),
        donor_fold=np.array([(donor_folds or {}).get(a, NO_FOLD) for a in asset], np.int64),
        survived=survived,
        asset_id=asset,
        cycle=cycle,
    )


class RULDataModule(L.LightningDataModule):
    """Train/val loaders of trajectory pairs; exposes the fitted scaler and the folds."""

    def __init__(
        self,
        frame,
        feature_columns: list[str],
        rul_cap: float = 125.0,
        n_folds: int = 5,
        batch_size: int = 256,
        seed: int = 42,
        pair_max_gap: int = 1,
        virtual_parents: dict[str, tuple[str, str]] | None = None,
        rul_per_cycle: float = 1.0,
    ) -> None:
        super().__init__()
        import pandas as pd

        missing = [c for c in (ASSET_ID, CYCLE, RUL, *feature_columns) if c not in frame.columns]
        if missing:
            raise ValueError(f"training frame lacks columns: {missing}")
        self.frame = frame
        self.feature_columns = list(feature_columns)
        self.rul_cap = float(rul_cap)
        self.rul_per_cycle = float(rul_per_cycle)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        parents = dict(virtual_parents or {})  # virtual id -> (source, donor)
        ids = frame[ASSET_ID].astype(str)
        virtual = ids.isin(parents)
        is_labelled = np.isfinite(frame[RUL].to_numpy(dtype=np.float64))
        labelled_assets = ids[is_labelled & ~virtual].unique()
        #: asset -> fold of every real run-to-failure asset (each is predicted out of fold)
        self.folds = assign_folds(labelled_assets, n_folds, seed)
        self.n_folds = max(self.folds.values()) + 1
        self.labelled_assets = sorted(self.folds)
        #: assets without a single label: training rows for the physics terms only
        self.unlabelled_assets = sorted(set(ids[~ids.isin(labelled_assets) & ~virtual]))
        # Labelled assets contribute their labelled rows; unlabelled assets all of theirs.
        self.labelled_frame = frame[ids.isin(self.labelled_assets) & is_labelled]
        real = frame[
            (ids.isin(self.labelled_assets) & is_labelled) | ids.isin(self.unlabelled_assets)
        ]
        self.n_unlabelled_rows = int(len(real) - len(self.labelled_frame))
        # Virtual assets (training.augment) are held out with their source's fold and their
        # donor's: a copy of u at v's pace has u's path and v's lifetime, so a member that
        # holds out either must not train on it. The scaler, the validation and the
        # calibration see real assets only.
        kept = {v: p for v, p in parents.items() if set(p) <= set(self.folds)}
        train_folds = {**self.folds, **{v: self.folds[u] for v, (u, _) in kept.items()}}
        donor_folds = {v: self.folds[d] for v, (_, d) in kept.items()}
        fit_frame = pd.concat([real, frame[ids.isin(kept)]])
        self.n_virtual_rows = int(len(fit_frame) - len(real))
        self.scaler = Standardizer.fit(real[self.feature_columns].to_numpy(np.float64))
        self.train_pairs = build_pairs(
            fit_frame,
            self.feature_columns,
            self.scaler,
            rul_cap,
            pair_max_gap,
            seed,
            train_folds,
            donor_folds,
            self.rul_per_cycle,
        )
        # validation keeps consecutive pairs: val/physics_residual is a per-cycle figure
        self.val_pairs = build_pairs(
            self.labelled_frame, self.feature_columns, self.scaler, rul_cap, folds=self.folds,
            per_cycle=self.rul_per_cycle,
        )
        vp = self.val_pairs
        vp.weight = cut_weights(vp.asset_id, vp.cycle, vp.rul_raw,
                                self.rul_per_cycle).astype(np.float32)

    def _loader(self, pairs: PairArrays, shuffle: bool):
        from torch.utils.data import (
            BatchSampler,
            DataLoader,
            RandomSampler,
            SequentialSampler,
            TensorDataset,
        )

        ds = TensorDataset(*pairs.tensors())
        if shuffle:
            base = RandomSampler(ds, generator=self._shuffle_rng())
        else:
            base = SequentialSampler(ds)
        sampler = BatchSampler(base, batch_size=self.batch_size, drop_last=False)
        # batch_size=None + a batch sampler: the dataset is indexed with a list of indices
        # (TensorDataset supports it), so one gather per batch instead of per row.
        return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=0)

    def _shuffle_rng(self):
        """The training loader's shuffle generator: seeded, or where a checkpoint left it."""
        import torch

        self._rng = torch.Generator().manual_seed(self.seed)
        if getattr(self, "_rng_state", None) is not None:
            self._rng.set_state(self._rng_state)
        return self._rng

    # A checkpoint (training.candidates) carries the shuffle generator: a run resumed at
    # epoch k draws epoch k's order, as the uninterrupted run did, not epoch 0's again.
    # Lightning restores this before it asks for the loaders.
    def state_dict(self) -> dict:
        rng = getattr(self, "_rng", None)
        return {"shuffle_rng": rng.get_state()} if rng is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:
        self._rng_state = state_dict.get("shuffle_rng")

    def train_dataloader(self):
        return self._loader(self.train_pairs, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_pairs, shuffle=False)
