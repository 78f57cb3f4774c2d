"""LightningDataModule over a training frame: split by asset, scale, pair consecutive cycles.

    frame[asset_id, cycle, rul (uncapped), *features]
        │ split_assets (by asset, seeded)           never by row: rows of one asset are
        ├──────────────► train assets ──┐            near-duplicates, a row split leaks
        └──────────────► val assets ────┤
                                        ▼
              Standardizer fitted on train rows only (no val statistics leak into the model)
                                        ▼
              PairTensors: x(t), x(next), capped y(t), y(next), dt, uncapped rul(t), has_next
                                        ▼
              DataLoader of whole batches (a BatchSampler hands index lists to the tensors,
              so there is no per-row __getitem__/collate cost)

Imports lightning at module level: import this module only inside functions (train.fit).

Each training row carries its successor (the next observed cycle of the same asset) so
the physics terms in `training.module` can compare consecutive predictions; the last row
of an asset points to itself with has_next = 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np

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


def split_assets(assets, val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Deterministic split of asset ids into (train, val); both sides get >= 1 asset."""
    ids = sorted({str(a) for a in assets})
    if len(ids) < 2:
        raise ValueError("need at least 2 assets to hold one out for validation/calibration")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(ids))
    n_val = int(min(len(ids) - 1, max(1, round(val_fraction * len(ids)))))
    val = sorted(ids[i] for i in order[:n_val])
    train = sorted(ids[i] for i in order[n_val:])
    return train, val


@dataclass
class Standardizer:
    """Per-column mean/std fitted on training rows; constant columns get std 1."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        mean = x.mean(axis=0)
        std = x.std(axis=0)
        std = np.where(std > 1e-8, std, 1.0)
        return cls(mean.astype(np.float64), std.astype(np.float64))

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


@dataclass
class PairArrays:
    """Rows of one split with their successor rows (numpy; tensors are made on demand)."""

    x: np.ndarray
    x_next: np.ndarray
    y: np.ndarray  # capped target at t
    y_next: np.ndarray
    dt: np.ndarray
    rul_raw: np.ndarray  # uncapped true RUL at t (decides the plateau mask)
    has_next: np.ndarray
    asset_id: np.ndarray
    cycle: np.ndarray

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
            )
        )


def build_pairs(frame, feature_columns: list[str], scaler: Standardizer, cap: float) -> PairArrays:
    """Sort by (asset, cycle), scale features, link every row to its successor."""
    df = frame.sort_values([ASSET_ID, CYCLE], kind="stable")
    x = scaler.transform(df[feature_columns].to_numpy(dtype=np.float64))
    rul = df[RUL].to_numpy(dtype=np.float64)
    y = np.minimum(rul, cap).astype(np.float32)
    asset = df[ASSET_ID].astype(str).to_numpy()
    cycle = df[CYCLE].to_numpy(dtype=np.float64)
    n = len(df)
    nxt = np.arange(1, n + 1)
    has_next = np.zeros(n, dtype=bool)
    if n > 1:
        has_next[:-1] = (asset[1:] == asset[:-1]) & (cycle[1:] > cycle[:-1])
    nxt = np.where(has_next, nxt, np.arange(n))
    dt = np.where(has_next, cycle[nxt] - cycle, 0.0).astype(np.float32)
    return PairArrays(
        x=x,
        x_next=x[nxt],
        y=y,
        y_next=y[nxt],
        dt=dt,
        rul_raw=rul.astype(np.float32),
        has_next=has_next.astype(np.float32),
        asset_id=asset,
        cycle=cycle,
    )


class RULDataModule(L.LightningDataModule):
    """Train/val loaders of consecutive-cycle pairs; exposes the fitted scaler and the split."""

    def __init__(
        self,
        frame,
        feature_columns: list[str],
        rul_cap: float = 125.0,
        val_fraction: float = 0.2,
        batch_size: int = 256,
        seed: int = 42,
    ) -> None:
        super().__init__()
        missing = [c for c in (ASSET_ID, CYCLE, RUL, *feature_columns) if c not in frame.columns]
        if missing:
            raise ValueError(f"training frame lacks columns: {missing}")
        self.frame = frame
        self.feature_columns = list(feature_columns)
        self.rul_cap = float(rul_cap)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.train_assets, self.val_assets = split_assets(frame[ASSET_ID], val_fraction, seed)
        ids = frame[ASSET_ID].astype(str)
        self.train_frame = frame[ids.isin(self.train_assets)]
        self.val_frame = frame[ids.isin(self.val_assets)]
        self.scaler = Standardizer.fit(self.train_frame[self.feature_columns].to_numpy(np.float64))
        self.train_pairs = build_pairs(self.train_frame, self.feature_columns, self.scaler, rul_cap)
        self.val_pairs = build_pairs(self.val_frame, self.feature_columns, self.scaler, rul_cap)

    def _loader(self, pairs: PairArrays, shuffle: bool):
        import torch
        from torch.utils.data import (
            BatchSampler,
            DataLoader,
            RandomSampler,
            SequentialSampler,
            TensorDataset,
        )

        ds = TensorDataset(*pairs.tensors())
        if shuffle:
            gen = torch.Generator().manual_seed(self.seed)
            base = RandomSampler(ds, generator=gen)
        else:
            base = SequentialSampler(ds)
        sampler = BatchSampler(base, batch_size=self.batch_size, drop_last=False)
        # batch_size=None + a batch sampler: the dataset is indexed with a list of indices
        # (TensorDataset supports it), so one gather per batch instead of per row.
        return DataLoader(ds, sampler=sampler, batch_size=None, num_workers=0)

    def train_dataloader(self):
        return self._loader(self.train_pairs, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.val_pairs, shuffle=False)
