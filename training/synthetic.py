"""A deterministic synthetic training frame for tests and demos (no features/ dependency).

    per asset: lifetime T ~ U(t_min, t_max), rate a ~ U(0.02, 0.05)
    damage D(t) = exp(a (t - T))           (the exponential law of training.physics)
    sensor_j(t) = gain_j * D(t) + offset_j + noise
    features:   sensor_j, rolling mean of sensor_j over `window` cycles, cycle
    label:      rul = T - t (uncapped)

It produces exactly the frame shape `training.train.fit` expects from the feature store
(asset_id, timestamp, cycle, rul, *float features), so training can be tested without
Feast or the simulator.
"""

from __future__ import annotations

import numpy as np


def synthetic_frame(
    n_assets: int = 24,
    seed: int = 0,
    n_sensors: int = 6,
    window: int = 10,
    t_min: int = 120,
    t_max: int = 220,
    noise: float = 0.05,
):
    import pandas as pd

    rng = np.random.default_rng(seed)
    gains = rng.uniform(0.5, 2.0, n_sensors) * rng.choice([-1.0, 1.0], n_sensors)
    offsets = rng.normal(0.0, 1.0, n_sensors)
    parts = []
    for i in range(n_assets):
        life = int(rng.integers(t_min, t_max + 1))
        rate = rng.uniform(0.02, 0.05)
        cycle = np.arange(1, life + 1)
        damage = np.exp(rate * (cycle - life))
        sensors = damage[:, None] * gains + offsets + rng.normal(0.0, noise, (life, n_sensors))
        df = pd.DataFrame(sensors, columns=[f"s{j}" for j in range(n_sensors)])
        means = df.rolling(window, min_periods=1).mean().add_suffix("_mean")
        df = pd.concat([df, means], axis=1)
        df.insert(0, "asset_id", f"syn-{i:03d}")
        df.insert(1, "cycle", cycle)
        df.insert(
            2, "timestamp", pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(cycle, "h")
        )
        df["rul"] = (life - cycle).astype(float)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)
