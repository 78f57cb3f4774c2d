"""Split-conformal uncertainty for RUL: intervals and P(RUL <= horizon).

    held-out assets (never trained on)
        │  pred, capped true RUL
        ▼
    residuals r = true - pred ──► grouped by predicted-RUL bin (Mondrian) ──► sorted, in model.json
                                                                                  │
    new prediction p ──► its bin's residuals ──► predictive sample p + r  ────────┤
                                                  ├─► interval: equal-tailed conformal quantiles
                                                  └─► p_fail(h) = share of p + r <= h

Why split conformal: it is distribution-free and needs no change to the network — the
residuals of assets held out from training give a finite-sample marginal coverage
guarantee under exchangeability (Vovk et al. 2005; Lei et al., "Distribution-free
predictive inference for regression", JASA 2018; Angelopoulos & Bates, "A gentle
introduction to conformal prediction", 2021).

Why *asymmetric* (equal-tailed) quantiles of signed residuals rather than pred ± q(|r|):
RUL errors are skewed — a healthy asset's RUL is bounded by the cap, a failing one by 0 —
so a symmetric band wastes width on one side. Taking the conformal alpha/2 and 1-alpha/2
quantiles of the signed residual keeps >= 1-alpha coverage (union bound over the two
tails) and makes the interval the central interval of the *same* empirical predictive
distribution that p_fail uses, so interval and probability never contradict each other.

Why Mondrian bins on the predicted RUL: error size depends on life stage (small near
failure, large in mid-life), so one global residual set makes near-failure intervals and
p_fail far too wide. Bins are formed on the *prediction* (known at serving time), which
keeps conformal validity within each bin (Vovk et al. 2005, "Mondrian" conformal).

What is covered: the *uncapped* RUL (training.train calibrates on it), although the point
model is trained on the capped target. The interval is a statement about when the asset
fails, so near the cap its upper side grows to what the held-out assets show (a healthy
asset may have 125 or 300 cycles left); below the cap the two targets agree.

Caveats, stated honestly: rows of one asset are correlated, so the guarantee is marginal
over rows of exchangeable *assets*; a test population cut off at other life stages than the
calibration rows (C-MAPSS test units) only gets approximate coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class ConformalCalibration:
    """Per-bin sorted residuals (true - pred), bins split on predicted RUL at `bin_edges`."""

    bin_edges: list[float] = field(default_factory=list)
    residuals: list[np.ndarray] = field(default_factory=list)

    # ------------------------------------------------------------------ build
    @classmethod
    def fit(
        cls,
        pred: np.ndarray,
        true: np.ndarray,
        max_bins: int = 4,
        min_per_bin: int = 200,
    ) -> ConformalCalibration:
        """Calibrate on held-out predictions; bins = prediction quantiles, >= min_per_bin rows."""
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        true = np.asarray(true, dtype=np.float64).reshape(-1)
        if pred.size == 0 or pred.size != true.size:
            raise ValueError("calibration needs equally long, non-empty pred and true arrays")
        n_bins = int(max(1, min(max_bins, pred.size // max(1, min_per_bin))))
        edges = (
            np.unique(np.quantile(pred, np.linspace(0, 1, n_bins + 1)[1:-1])) if n_bins > 1 else []
        )
        edges = [float(e) for e in edges]
        # Merge bins that ended up too small (ties at the cap plateau produce those).
        while edges:
            counts = np.bincount(
                np.searchsorted(edges, pred, side="right"), minlength=len(edges) + 1
            )
            small = int(np.argmin(counts))
            if counts[small] >= min(min_per_bin, pred.size):
                break
            edges.pop(min(small, len(edges) - 1))
        idx = np.searchsorted(edges, pred, side="right")
        residuals = [np.sort(true[idx == b] - pred[idx == b]) for b in range(len(edges) + 1)]
        return cls(bin_edges=edges, residuals=residuals)

    # ---------------------------------------------------------------- queries
    def _bins(self, pred: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.bin_edges, pred, side="right")

    def interval(self, pred: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed split-conformal interval at `level`, lower bound clipped at 0."""
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level}")
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        alpha = 1.0 - level
        lower = np.empty_like(pred)
        upper = np.empty_like(pred)
        bins = self._bins(pred)
        for b, r in enumerate(self.residuals):
            sel = bins == b
            if not sel.any():
                continue
            n = r.size
            # Finite-sample conformal ranks (1-based):
            # k_lo = floor((n+1) a/2), k_hi = ceil((n+1)(1-a/2)).
            k_lo = math.floor((n + 1) * alpha / 2.0)
            k_hi = math.ceil((n + 1) * (1.0 - alpha / 2.0))
            lo = r[k_lo - 1] if k_lo >= 1 else -np.inf
            hi = r[k_hi - 1] if k_hi <= n else np.inf
            lower[sel] = pred[sel] + lo
            upper[sel] = pred[sel] + hi
        return np.maximum(lower, 0.0), upper

    def p_fail(self, pred: np.ndarray, horizon: float) -> np.ndarray:
        """P(RUL <= horizon) under the empirical predictive distribution pred + r."""
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        out = np.empty_like(pred)
        bins = self._bins(pred)
        for b, r in enumerate(self.residuals):
            sel = bins == b
            if sel.any():
                out[sel] = np.searchsorted(r, horizon - pred[sel], side="right") / max(r.size, 1)
        return np.clip(out, 0.0, 1.0)

    def samples(self, pred: np.ndarray, n: int = 200) -> np.ndarray:
        """(len(pred), n) draws of the RUL from the same predictive distribution pred + r
        (n evenly spaced quantiles of the bin's residuals, clipped at 0), sorted per row:
        what a decision that needs the whole distribution (serving.decisions) integrates."""
        pred = np.asarray(pred, dtype=np.float64).reshape(-1)
        out = np.empty((pred.size, n))
        bins = self._bins(pred)
        q = (np.arange(n) + 0.5) / n
        out[:] = pred[:, None]  # a bin without residuals: the point prediction itself
        for b, r in enumerate(self.residuals):
            sel = bins == b
            if sel.any() and r.size:
                out[sel] = pred[sel, None] + np.quantile(r, q)[None, :]
        return np.maximum(out, 0.0)

    # ---------------------------------------------------------- serialisation
    def to_dict(self, max_per_bin: int = 2000) -> dict:
        """JSON-able form; very large bins are thinned to evenly spaced order statistics."""
        res = []
        for r in self.residuals:
            if r.size > max_per_bin:
                r = r[np.linspace(0, r.size - 1, max_per_bin).round().astype(int)]
            res.append([round(float(v), 4) for v in r])
        return {"method": "split-conformal-mondrian", "bin_edges": self.bin_edges, "residuals": res}

    @classmethod
    def from_dict(cls, d: dict) -> ConformalCalibration:
        return cls(
            bin_edges=[float(e) for e in d["bin_edges"]],
            residuals=[np.sort(np.asarray(r, dtype=np.float64)) for r in d["residuals"]],
        )
