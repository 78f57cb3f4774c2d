"""The RUL network: standardised features -> (RUL in cycles, health in [0, 1]).

    x (n_features, standardised)
      ─► [Linear ─► GELU ─► Dropout] x n_layers ─┬─► rul head ─► s*softplus ─► RUL >= 0
                                                 └─► health head ─► sigmoid ─► h in [0, 1]

A shared trunk with two heads, so that the damage law (training.physics) can tie
the heads together. Nothing here knows about C-MAPSS or any sensor: the input width
is whatever the feature contract says. The RUL head is scaled by `rul_scale` (the
target cap) so the logit lives around O(1) whatever the unit of RUL is.
"""

from __future__ import annotations

import torch
from torch import nn

from training.physics import bounded_health, bounded_rul


class RULNet(nn.Module):
    """Multi-layer perceptron with an RUL head and a latent-health head."""

    def __init__(
        self,
        n_features: int,
        hidden: int = 64,
        n_layers: int = 2,
        dropout: float = 0.0,
        rul_scale: float = 125.0,
    ) -> None:
        super().__init__()
        if n_features < 1 or hidden < 1 or n_layers < 1:
            raise ValueError("n_features, hidden and n_layers must be >= 1")
        layers: list[nn.Module] = []
        width = n_features
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.GELU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        self.trunk = nn.Sequential(*layers)
        self.rul_head = nn.Linear(hidden, 1)
        self.health_head = nn.Linear(hidden, 1)
        self.rul_scale = float(rul_scale)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.trunk(x)
        rul = bounded_rul(self.rul_head(z).squeeze(-1), self.rul_scale)
        health = bounded_health(self.health_head(z).squeeze(-1))
        return rul, health
