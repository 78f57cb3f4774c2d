"""Physics of degradation as plain torch functions and small `nn.Module`s.

    network outputs                      physics terms (residuals; 0 = consistent)
    ───────────────                      ─────────────────────────────────────────
    rul(t), rul(t+dt) ─────────────────► (a) time consistency   r = rul(t) - rul(t+dt) - dt
    rul(t), still running s cycles on ─► (a') censoring bound    r = max(0, min(s, cap) - rul(t))
    health h = 1 - D ─┬────────────────► (b) damage law         r = D - exp(-alpha * rul)
                      └────────────────► (b') monotone damage    r = max(0, D(t) - D(t+dt))
    raw logits ────────────────────────► (c) bounds via activations: rul = s*softplus(z) >= 0,
                                                                   h = sigmoid(z) in [0, 1]

Why these terms
---------------
(a) Time consistency. Remaining useful life is a clock: between two observations of the
    same asset that are dt cycles apart, the true RUL falls by exactly dt. With the
    standard piecewise-linear target capped at `rul_cap` (Heimes 2008; the C-MAPSS
    protocol) this only holds where the target is *below* the cap, so pairs in the
    early-life plateau are masked out (there the capped target is constant). The law holds
    for any gap dt; the pairs are built in training.datamodule. It also holds where the RUL
    is *unknown* (assets still in service): there the prediction decides the regime, and
    those rows are the collocation points of the PINN, where physics is the only signal.

(a') Censoring bound. An asset still running s cycles after t had RUL(t) = s + RUL(last
    reading) >= s: (a) integrated to the last reading plus (c). Beside the clock of (a),
    it is what the history of an in-service asset (no failure yet, no label) says about
    its RUL: information that the labels of run-to-failure assets do not already hold.

(b) Damage law. The C-MAPSS generator (Saxena, Goebel, Simon, Eklund, "Damage propagation
    modeling for aircraft engine run-to-failure simulation", PHM 2008) degrades the
    flow/efficiency of each module with an exponential wear law; failure is declared
    when the health margin reaches zero. We use the normalised, single-parameter form

        D(t) = exp(alpha * (t - t_fail)),   alpha > 0,   D(t_fail) = 1 (failure),

    i.e. with RUL = t_fail - t:   D = exp(-alpha * RUL)   <=>   RUL = -ln(D) / alpha.

    The network has a *health head* h in [0, 1] (damage D = 1 - h) next to its RUL head;
    the residual D - exp(-alpha * RUL) ties the two heads together through the law, with
    alpha a learnable parameter (log-parametrised, so it stays positive). We write the
    residual in damage space rather than RUL space (RUL - (-ln D)/alpha) because it is
    bounded and well conditioned: -ln(D) explodes for healthy assets (D -> 0) exactly
    where the capped RUL target is flat. Both forms vanish on the same set.
    Damage is also irreversible between maintenance actions, so D(t+dt) >= D(t) on
    consecutive observations (b').

(c) Bounds are enforced by construction (softplus / sigmoid), not by penalties, so no
    loss weight is needed and predictions are always physically admissible.

(d) Time-scaling symmetry of (b), used on the data rather than in the loss: the
    exponential family is closed under t -> t / k, so an asset's wear path run k times as
    fast is another admissible asset (lifetime T / k, RUL r / k, rates of change x k, the
    same state at failure). training.augment builds such virtual assets from the raw
    readings (wear trend warped in time, fresh measurement noise) at the paces the fleet
    has shown. Where labels are few (20 failed FD001 units) it is the term that carries the
    gain over the data-only baseline (docs/experiments.md#where-the-gain-comes-from).

This is the physics-informed neural network (PINN) idea of adding residuals of known
governing equations to the data loss (Raissi, Perdikaris, Karniadakis, "Physics-informed
neural networks", J. Comput. Phys. 378, 2019), applied to prognostics as in Cofre-Martel,
Lopez Droguett, Modarres, "Remaining useful life estimation through deep learning partial
differential equation models: a framework for degradation dynamics interpretation using
latent physics-informed neural networks", Sensors 21(12), 2021.

Extending: a new damage law is an `nn.Module` with `damage(rul)`, `rul_from_damage(D)`,
`residual(rul, health)` and `params()` (e.g. Saxena's generalised exponential
D = exp(a * t^b) with learnable a, b); `module.RULModule` takes it as an argument.
All functions work in cycles; the LightningModule decides how to scale them.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812


# ---------------------------------------------------------------- (c) bounds
def bounded_rul(z: torch.Tensor, scale: float) -> torch.Tensor:
    """RUL >= 0 from an unbounded logit; `scale` (the cap) sets the output range."""
    return scale * F.softplus(z)


def bounded_health(z: torch.Tensor) -> torch.Tensor:
    """Health in [0, 1] from an unbounded logit (1 = new, 0 = failed)."""
    return torch.sigmoid(z)


# ------------------------------------------------------ (a) time consistency
def time_consistency_residual(
    rul_t: torch.Tensor,
    rul_next: torch.Tensor,
    dt: torch.Tensor,
    cap: float,
    target_t: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual r = rul(t) - rul(t+dt) - dt and the mask of pairs where it must vanish.

    `target_t` is the *uncapped* true RUL at t; the pair is in the linear (non-plateau)
    part of the capped target iff target_t <= cap (then both capped targets equal the
    true ones). Without labels (validation on live data) the prediction decides the
    regime: rul_t < cap.
    """
    r = rul_t - rul_next - dt
    regime = target_t if target_t is not None else rul_t.detach()
    mask = regime <= cap if target_t is not None else regime < cap
    return r, mask


def censored_rul_residual(rul_t: torch.Tensor, survived: torch.Tensor, cap: float) -> torch.Tensor:
    """max(0, min(survived, cap) - rul(t)): positive only where the prediction is too short.

    An asset still running `survived` cycles after t had RUL(t) = survived + RUL(last) >=
    survived: (a) integrated up to its last reading, plus the bound RUL >= 0. On the capped
    scale the bound is min(survived, cap). This is what an in-service (censored) history
    says about its RUL without any failure label.
    """
    return F.relu(torch.clamp(survived, max=cap) - rul_t)


# --------------------------------------------------------- (b') monotonicity
def monotone_damage_residual(damage_t: torch.Tensor, damage_next: torch.Tensor) -> torch.Tensor:
    """max(0, D(t) - D(t+dt)): positive only where damage would heal."""
    return F.relu(damage_t - damage_next)


def masked_mean_square(r: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of r^2 over `mask` (0 when the mask is empty, so a batch without pairs is fine).

    `mask` broadcasts against `r` (e.g. one (n,) mask for the (K, n) residuals of K members).
    """
    if mask is None:
        return (r * r).mean() if r.numel() else r.new_zeros(())
    m = mask.to(r.dtype).expand_as(r)
    return (m * r * r).sum() / m.sum().clamp_min(1.0)


# ------------------------------------------------------------ (b) damage law
class ExponentialDamageLaw(nn.Module):
    """D = exp(-alpha * RUL), alpha = exp(log_alpha) > 0 learnable (Saxena et al. 2008).

    `alpha0` is the initial rate; default 3 / cap puts D = exp(-3) ~ 0.05 at the cap,
    i.e. an asset at the cap has lost ~5% of its health margin.
    """

    name = "exponential"

    def __init__(self, alpha0: float = 3.0 / 125.0, learnable: bool = True) -> None:
        super().__init__()
        if alpha0 <= 0:
            raise ValueError(f"alpha0 must be > 0, got {alpha0}")
        self.log_alpha = nn.Parameter(torch.tensor(math.log(alpha0)), requires_grad=learnable)

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    def damage(self, rul: torch.Tensor) -> torch.Tensor:
        """D(RUL) = exp(-alpha * RUL) in (0, 1] for RUL >= 0."""
        return torch.exp(-self.alpha * rul)

    def rul_from_damage(self, damage: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        """Inverse law RUL = -ln(D) / alpha (D clamped to [eps, 1])."""
        return -torch.log(damage.clamp(eps, 1.0)) / self.alpha

    def residual(self, rul: torch.Tensor, health: torch.Tensor) -> torch.Tensor:
        """(1 - h) - exp(-alpha * RUL): the health head's damage minus the law's damage."""
        return (1.0 - health) - self.damage(rul)

    def params(self) -> dict[str, float]:
        """Learned physical parameters (logged to MLflow, stored in model.json)."""
        return {"damage_law": self.name, "alpha": float(self.alpha.detach())}
