"""A synthetic ageing fleet for the drift tests: sensors trend with age, per-asset offsets."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ageing_fleet(sensors, n_assets, life_low, life_high, seed, *, rows_per_asset=25,
                 bias=None, prefix="a", stage_column="stage") -> pd.DataFrame:
    """Assets at remaining life `stage_column` (1 new → 0 failed), `rows_per_asset` each;
    sensor j trends as 2·(j mod 3)·age² plus the asset's offset and unit noise; `bias`
    adds a constant to some columns (drift)."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_assets):
        stage = np.sort(rng.uniform(life_low, life_high, rows_per_asset))[::-1]
        age = 1.0 - stage
        offset = rng.normal(0, 0.3, len(sensors))
        values = {s: 2.0 * (j % 3) * age**2 + offset[j] + rng.normal(0, 1, rows_per_asset)
                  for j, s in enumerate(sensors)}
        frames.append(pd.DataFrame({"asset_id": f"{prefix}{i}", stage_column: stage, **values}))
    df = pd.concat(frames, ignore_index=True)
    for col, shift in (bias or {}).items():
        df[col] += shift
    return df
