"""Why this RUL: integrated gradients of the served network, summed per sensor.

    x (n, feature_columns)  ─► standardise exactly as RULPredictor.raw (a NaN -> 0)
        ─► Captum IntegratedGradients of net(z).rul (the ensemble mean, RUL units)
           from the baseline z = 0 to z, Gauss-Legendre quadrature, every row in one call
        ─► attributions (n, features) in RUL units; per row they sum to
           rul(x) - rul(baseline), up to the quadrature error (Captum's convergence delta)
        ─► summed per channel: sensor_2_mean, sensor_2_slope, ... -> sensor_2; a setting and
           the age are channels of their own
        ─► Explanation per row: contributions {channel: RUL units}, top drivers, the
           baseline RUL, imputed channels, completeness gap

Why integrated gradients (Sundararajan, Taly, Yan, "Axiomatic attribution for deep
networks", ICML 2017): it is *complete* — the attributions of a row add up to the change
of the output between the baseline and the row — so every contribution is in RUL units
and the parts add up to the prediction: rul = baseline_rul + sum(contributions) + gap.
The network is a small smooth MLP (GELU, softplus), so N_STEPS Gauss-Legendre points give
a gap of ~1e-5 cycles on trained models and ~2e-4 (float32 rounding) on a deliberately
curved one, where 16 points leave 1e-2; SHAP-style sampling would need a background set
and far more forward passes for an approximation of the same quantity.

Why the baseline is the training mean (0 in standardised space, the scaler's mean of every
feature): a contribution then reads "this sensor moves the RUL by X units away from what
the model predicts for an average training state". The average state is a reference, not
a real asset (a feature-wise mean of a whole fleet's lives): its RUL, `baseline_rul`, is
returned so the reader sees where the sum starts.

Why per channel: the seven window features of a sensor (level and trend at three scales,
change since the start) are views of one physical signal; a planner inspects a sensor,
not a slope. Attributions are additive, so the sums stay complete.

A missing optional sensor: its features are NaN and the model imputes the training mean,
which IS the baseline, so x - baseline = 0 and its attribution is exactly 0. Such channels
are listed under `imputed`: 0 there means "not measured", not "normal".

Cost: one forward + backward over n x N_STEPS rows: ~1.5 ms of one CPU core per asset for
the production network (151 features, 10 members, hidden 128) in batches of 8-64, ~5 ms for
a lone asset, against ~0.02 ms per asset for the prediction (docs/explanations.md).
It is only paid when a caller asks (`explain: true`); torch and Captum are imported here,
inside the functions, never on the plain /predict path.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from serving.schemas import Explanation

#: Gauss-Legendre points on the path baseline -> x (Captum's `n_steps`).
N_STEPS = 32
#: Rows per Captum call (n x N_STEPS path points each): 32-64 rows were fastest per row on
#: a CPU core, 256 rows ~1.5x slower (cache), and it bounds the memory of one call.
ROWS_PER_CALL = 64
#: Channels listed in `top_drivers`.
TOP_DRIVERS = 5
BASELINE = "training_mean"
METHOD = "integrated_gradients"


@lru_cache(maxsize=64)
def channel_of(feature: str) -> str:
    """The physical channel a feature column is computed from: `sensor_2_mean_long` ->
    `sensor_2` (features.transforms.SENSOR_FEATURES suffixes); a setting or the age is its
    own channel."""
    from features.transforms import SENSOR_FEATURES

    for suffix in sorted(SENSOR_FEATURES, key=len, reverse=True):  # "mean_long" before "mean"
        if feature.endswith(f"_{suffix}"):
            return feature[: -len(suffix) - 1]
    return feature


@lru_cache(maxsize=16)
def channel_map(feature_columns: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray]:
    """(channel names in input order, (features, channels) 0/1 matrix that sums them)."""
    names = tuple(dict.fromkeys(channel_of(c) for c in feature_columns))
    index = {name: k for k, name in enumerate(names)}
    onehot = np.zeros((len(feature_columns), len(names)))
    onehot[np.arange(len(feature_columns)), [index[channel_of(c)] for c in feature_columns]] = 1
    onehot.setflags(write=False)
    return names, onehot


@dataclass(frozen=True)
class Attribution:
    """Integrated gradients of n rows, summed per channel (arrays aligned with the rows)."""

    channels: tuple[str, ...]
    #: (n, channels) RUL units
    contributions: np.ndarray
    #: (n,) rul(x) of the network, the ensemble mean
    rul: np.ndarray
    baseline_rul: float
    #: (n,) sum of the attributions - (rul(x) - rul(baseline)): Captum's convergence delta
    gap: np.ndarray
    #: (n, channels) True where every feature of the channel was missing (imputed)
    imputed: np.ndarray


def standardised(predictor, x: np.ndarray) -> np.ndarray:
    """What the network sees for `x`: the arithmetic of RULPredictor.raw (float32, NaN -> 0)."""
    spec = predictor.spec
    mean = np.asarray(spec.scaler_mean, dtype=np.float32)
    inv_std = (1.0 / np.asarray(spec.scaler_std, dtype=np.float64)).astype(np.float32)
    z = (np.asarray(x, dtype=np.float32) - mean) * inv_std
    return np.ascontiguousarray(np.nan_to_num(z, nan=0.0))


def attribute(predictor, x: np.ndarray, *, n_steps: int = N_STEPS) -> Attribution:
    """Integrated gradients of `predictor.net`'s RUL for (n, feature_columns) rows `x`.

    `predictor`: a training.artifact.RULPredictor (needs .net, .spec, .feature_columns).
    Every member of the ensemble, as served (not out of fold).
    """
    import torch
    from captum.attr import IntegratedGradients

    x = np.asarray(x, dtype=np.float64).reshape(-1, len(predictor.feature_columns))
    channels, onehot = channel_map(tuple(predictor.feature_columns))
    net = predictor.net

    def rul_of(z):
        return net(z)[0]

    ig = IntegratedGradients(rul_of)
    z_all = torch.from_numpy(standardised(predictor, x))
    zero = torch.zeros(1, z_all.shape[1])
    parts, ruls, gaps = [], [], []
    with torch.enable_grad():
        for start in range(0, len(x), ROWS_PER_CALL):
            z = z_all[start:start + ROWS_PER_CALL]
            attr, delta = ig.attribute(z, baselines=zero, n_steps=n_steps,
                                       method="gausslegendre", return_convergence_delta=True)
            parts.append(attr.detach().double().numpy())
            gaps.append(delta.detach().double().numpy())
    with torch.no_grad():
        baseline_rul = float(rul_of(zero)[0])
        ruls = rul_of(z_all).double().numpy() if len(x) else np.zeros(0)
    features = np.concatenate(parts) if parts else np.zeros((0, len(onehot)))
    missing = np.isnan(x).astype(np.float64) @ onehot
    return Attribution(
        channels=channels, contributions=features @ onehot, rul=ruls,
        baseline_rul=baseline_rul, gap=np.concatenate(gaps) if gaps else np.zeros(0),
        imputed=missing == onehot.sum(axis=0))


def explanations(attribution: Attribution, top: int = TOP_DRIVERS) -> list[Explanation]:
    """One Explanation (serving.schemas) per row of an Attribution."""
    from serving.schemas import Driver, Explanation

    names = attribution.channels
    out = []
    for row, gap, imputed in zip(attribution.contributions, attribution.gap,
                                 attribution.imputed, strict=True):
        order = np.argsort(-np.abs(row), kind="stable")[:top]
        out.append(Explanation(
            method=METHOD, baseline=BASELINE, baseline_rul=attribution.baseline_rul,
            contributions=dict(zip(names, row.tolist(), strict=True)),
            top_drivers=[Driver(channel=names[k], contribution=float(row[k])) for k in order],
            imputed=[n for n, flag in zip(names, imputed, strict=True) if flag],
            completeness_gap=float(gap)))
    return out


def explain_rows(predictor, x: np.ndarray, top: int = TOP_DRIVERS) -> list[Explanation]:
    """(n, feature_columns) rows -> an Explanation per row, in one batch."""
    return explanations(attribute(predictor, x), top=top)


def global_importance(predictor, frame: pd.DataFrame, *, max_rows: int = 2000,
                      seed: int = 0) -> dict[str, float]:
    """Mean |contribution| (RUL units) per channel over at most `max_rows` rows of `frame`
    (a seeded sample), largest first: how much each sensor moves the model's RUL away from
    the average training state, typically, on these rows."""
    if frame.empty:
        return {}
    rows = frame.sample(max_rows, random_state=seed) if len(frame) > max_rows else frame
    x = rows[list(predictor.feature_columns)].to_numpy(dtype=np.float64, na_value=np.nan)
    got = attribute(predictor, x)
    mean_abs = np.abs(got.contributions).mean(axis=0)
    return {got.channels[k]: float(mean_abs[k]) for k in np.argsort(-mean_abs, kind="stable")}
