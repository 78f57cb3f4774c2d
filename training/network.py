"""The RUL network: a deep ensemble of small MLPs, standardised features -> (RUL, health).

    x (n, n_features, standardised)
      ─► K members, each [EnsembleLinear ─► GELU ─► Dropout] x n_layers ─┬─► rul head ─► s*softplus
         (one batched matmul per layer, weights (K, in, out))            └─► health head ─► sigmoid
      ─► members(x): (K, n) RUL >= 0 and (K, n) health in [0, 1]   (training: every member's loss)
      ─► forward(x): their means                                    (prediction)

A shared trunk per member with two heads, so that the damage law (training.physics) can tie
the heads together. Nothing here knows about C-MAPSS or any sensor: the input width is
whatever the feature contract says. The RUL head is scaled by `rul_scale` (the target cap)
so the logit lives around O(1) whatever the unit of RUL is.

Why a deep ensemble (Lakshminarayanan, Pritzel, Blundell, "Simple and scalable predictive
uncertainty estimation using deep ensembles", NeurIPS 2017): averaging K independently
initialised networks removes most of the variance of one small network trained on ~100
assets, with no change to how a member is trained (figures: docs/experiments.md).
Why written by hand as batched matmuls rather than K `nn.Linear` stacks or torch.func: one
`baddbmm` per layer costs about as much as one member (the network is tiny, the overhead is
per call), and the state_dict stays a plain set of tensors for safetensors.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from training.physics import bounded_health, bounded_rul


def member_folds(n_members: int, n_folds: int) -> torch.Tensor:
    """Fold held out by each ensemble member (cross-fitting): member k holds out fold k mod F."""
    return torch.arange(n_members) % n_folds


def out_of_fold_mean(
    values: torch.Tensor, member_fold: torch.Tensor, fold: torch.Tensor
) -> torch.Tensor:
    """(K, n) member outputs -> (n,): per row, the mean over the members that held the row's
    fold out; rows without a fold (fold < 0, assets never trained on) get every member.

    The one place that decides what "out of fold" means: training (validation, calibration)
    and the stored predictor (evaluation, reviews, monitoring) all call it.
    """
    use = (member_fold[:, None] == fold[None, :]) | (fold[None, :] < 0)
    w = use.to(values.dtype)
    return (values * w).sum(0) / w.sum(0)


class EnsembleLinear(nn.Module):
    """K independent affine maps applied in one batched matmul: (K, n, in) -> (K, n, out)."""

    def __init__(self, n_members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_members, n_in, n_out))
        self.bias = nn.Parameter(torch.empty(n_members, 1, n_out))
        bound = 1.0 / math.sqrt(n_in)  # nn.Linear's default init, per member
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class RULNet(nn.Module):
    """Deep ensemble of MLPs, each with an RUL head and a latent-health head."""

    def __init__(
        self,
        n_features: int,
        hidden: int = 64,
        n_layers: int = 2,
        dropout: float = 0.0,
        rul_scale: float = 125.0,
        n_members: int = 1,
    ) -> None:
        super().__init__()
        if min(n_features, hidden, n_layers, n_members) < 1:
            raise ValueError("n_features, hidden, n_layers and n_members must be >= 1")
        layers: list[nn.Module] = []
        width = n_features
        for _ in range(n_layers):
            layers += [EnsembleLinear(n_members, width, hidden), nn.GELU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.trunk = nn.Sequential(*layers)
        self.heads = EnsembleLinear(n_members, hidden, 2)  # [:, :, 0] rul, [:, :, 1] health
        self.rul_scale = float(rul_scale)
        self.n_members = int(n_members)

    def members(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every member's (RUL, health), each of shape (K, n)."""
        z = self.heads(self.trunk(x.unsqueeze(0).expand(self.n_members, -1, -1)))
        return bounded_rul(z[..., 0], self.rul_scale), bounded_health(z[..., 1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ensemble means of RUL and health, each of shape (n,)."""
        rul, health = self.members(x)
        return rul.mean(0), health.mean(0)
