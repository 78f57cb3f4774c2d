"""Each physics term vanishes on a consistent trajectory and not on a violating one."""

import math

import pytest
import torch

from training import physics

CAP = 125.0


def _trajectory(life: int = 200):
    cycles = torch.arange(1, life + 1, dtype=torch.float32)
    true_rul = life - cycles
    return cycles, true_rul, torch.clamp(true_rul, max=CAP)


def test_time_consistency_zero_on_true_capped_rul():
    _, true_rul, capped = _trajectory()
    dt = torch.ones(len(capped) - 1)
    r, mask = physics.time_consistency_residual(capped[:-1], capped[1:], dt, CAP, true_rul[:-1])
    assert mask.sum() > 0 and (~mask).sum() > 0  # both regimes present
    assert physics.masked_mean_square(r, mask).item() == pytest.approx(0.0, abs=1e-10)
    # in the plateau the capped target does not fall: unmasked it would not be zero
    assert physics.masked_mean_square(r).item() > 0.1


def test_censoring_bound_zero_on_any_life_longer_than_seen_and_flags_short_ones():
    cycles, true_rul, capped = _trajectory(life=200)
    seen_until = 150.0  # the asset was still running at cycle 150: censored there
    survived = seen_until - cycles[:150]
    # the true (capped) RUL, and any failure later than the censoring time, satisfy it
    assert physics.censored_rul_residual(capped[:150], survived, CAP).abs().max() == 0
    later = torch.clamp(300.0 - cycles[:150], max=CAP)
    assert physics.censored_rul_residual(later, survived, CAP).abs().max() == 0
    # predicting failure at cycle 120 contradicts 30 more cycles of observed running
    early = torch.clamp(120.0 - cycles[:150], min=0.0, max=CAP)
    r = physics.censored_rul_residual(early, survived, CAP)
    assert r[100].item() == pytest.approx(30.0) and (r >= 0).all()
    # on the capped scale the bound never asks for more than the cap
    assert physics.censored_rul_residual(torch.tensor([CAP]), torch.tensor([500.0]), CAP) == 0


def test_time_consistency_flags_violations_and_handles_gaps():
    _, true_rul, capped = _trajectory()
    noisy = capped + 3.0 * torch.sin(torch.arange(len(capped), dtype=torch.float32))
    dt = torch.ones(len(capped) - 1)
    r, mask = physics.time_consistency_residual(noisy[:-1], noisy[1:], dt, CAP, true_rul[:-1])
    assert physics.masked_mean_square(r, mask).item() > 1.0
    # gaps of 2 cycles: RUL falls by dt, residual still zero
    r2, m2 = physics.time_consistency_residual(
        capped[:-2:2], capped[2::2], torch.full((len(capped[2::2]),), 2.0), CAP, true_rul[:-2:2]
    )
    assert physics.masked_mean_square(r2, m2).item() == pytest.approx(0.0, abs=1e-10)


def test_time_consistency_without_labels_uses_prediction_regime():
    rul = torch.tensor([125.0, 125.0, 60.0, 59.0])
    r, mask = physics.time_consistency_residual(rul[:-1], rul[1:], torch.ones(3), CAP)
    assert mask.tolist() == [False, False, True]  # a prediction at the cap is in the plateau
    assert r[2].item() == pytest.approx(0.0)


def test_damage_law_consistent_and_violating():
    law = physics.ExponentialDamageLaw(alpha0=0.03)
    rul = torch.linspace(0, 150, 50)
    health = 1 - torch.exp(-0.03 * rul)
    assert law.residual(rul, health).abs().max().item() < 1e-6
    assert law.residual(rul, torch.full_like(rul, 0.5)).abs().max().item() > 0.3
    # inverse law and failure at D = 1 <=> RUL = 0
    assert torch.allclose(law.rul_from_damage(law.damage(rul)), rul, atol=1e-3)
    assert law.damage(torch.tensor(0.0)).item() == pytest.approx(1.0)
    assert law.params()["alpha"] == pytest.approx(0.03)


def test_damage_law_alpha_is_learnable_and_positive():
    law = physics.ExponentialDamageLaw(alpha0=0.01)
    rul = torch.linspace(0, 100, 64)
    target_health = 1 - torch.exp(-0.05 * rul)
    opt = torch.optim.Adam(law.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        physics.masked_mean_square(law.residual(rul, target_health)).backward()
        opt.step()
    assert law.alpha.item() == pytest.approx(0.05, rel=0.05)


def test_monotone_damage():
    d = torch.tensor([0.1, 0.2, 0.4, 0.8])
    assert physics.monotone_damage_residual(d[:-1], d[1:]).sum().item() == 0.0
    healed = torch.tensor([0.1, 0.3, 0.2, 0.8])
    r = physics.monotone_damage_residual(healed[:-1], healed[1:])
    assert r.tolist() == pytest.approx([0.0, 0.1, 0.0])


def test_bounds():
    z = torch.linspace(-50, 50, 101)
    rul = physics.bounded_rul(z, CAP)
    h = physics.bounded_health(z)
    assert (rul >= 0).all() and (h >= 0).all() and (h <= 1).all()
    assert physics.bounded_rul(torch.tensor(0.0), CAP).item() == pytest.approx(CAP * math.log(2))
