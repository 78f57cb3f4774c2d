"""LightningModule: wires RULNet and the physics terms into one loss; logs the metrics.

    batch (x, x_next, y, y_next, dt, rul_raw, has_next, labelled, fold, donor_fold, survived)
        │ RULNet.members on x and x_next: K ensemble members; member k sees only the rows
        │ outside its held-out fold (k mod F) by fold and by donor_fold, in every term below
        ▼
    loss = mse_labelled((rul - y)/cap)                          data term (capped target)
         + w_tc * [ mean_pairs(((rul_t - rul_next - dt)/cap)^2) (a) time consistency (non-plateau;
                                                                    unlabelled rows: predicted)
                  + mean_unlabelled(max(0, min(s, cap) - rul)^2/cap^2) ] (a') censoring bound
         + w_dl * [ mean((D - exp(-alpha rul))^2)               (b) damage law, learnable alpha
                  + mean_pairs(max(0, D_t - D_next)^2) ]        (b') monotone damage
    logs: train/loss, train/data_loss, train/physics_tc, train/physics_dl,
          val/rmse (out of fold: each asset predicted by the members that held it out; the
          expected error at a random cut of its life against the uncapped RUL, the one
          candidates are compared on: training.truncation), val/rmse_all_rows (every row,
          capped target: the one the epoch is chosen on), val/physics_residual (RMS of (a)
          in cycles)

Everything is divided by the cap so the data term and the physics terms have the same
unit (fraction of the cap): a time-consistency violation of k cycles costs as much as a
prediction error of k cycles. With w_tc = w_dl = 0 the same module is the data-only
baseline. Imports lightning at module level: import it only inside functions.

Why two validation figures with two jobs. The epoch (the kept weights, early stopping) is
chosen on the all-rows RMSE against the capped target: the target the network is trained
to fit, so the figure moves only with what an epoch can change. Against the uncapped truth
the cut RMSE also holds the early-life error no model can remove (a unit 200 cycles from
failure looks new), and that error rewards epochs that raise early-life predictions at the
cost of late life. The cut RMSE *at the chosen epoch* is what compares candidates (physics
on or off, feature sets): there the question is which model a test unit cut in service is
better served by (docs/model.md#validation has the measurements).
"""

from __future__ import annotations

import copy

import lightning as L
import torch

from training import physics
from training.network import RULNet, member_folds, out_of_fold_mean

#: Unlabelled pairs count as past the plateau only where the prediction is below this share
#: of the cap (chosen a priori, not tuned: one validation-RMSE-sized margin at cap 125).
UNLABELLED_REGIME_SHARE = 0.8


class RULModule(L.LightningModule):
    def __init__(
        self,
        n_features: int,
        hidden_size: int = 64,
        n_layers: int = 2,
        dropout: float = 0.0,
        rul_cap: float = 125.0,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        weight_time_consistency: float = 1.0,
        weight_damage_law: float = 0.1,
        alpha0: float | None = None,
        max_epochs: int = 30,
        n_members: int = 2,
        n_folds: int = 2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = RULNet(
            n_features, hidden_size, n_layers, dropout, rul_scale=rul_cap, n_members=n_members
        )
        if not 2 <= n_folds <= n_members:
            raise ValueError(f"need 2 <= n_folds <= n_members, got {n_folds}, {n_members}")
        #: the fold each member holds out (never trains on, predicts out of fold)
        self.register_buffer("member_fold", member_folds(n_members, n_folds), persistent=False)
        self.damage_law = physics.ExponentialDamageLaw(alpha0 or 3.0 / rul_cap)
        self.cap = float(rul_cap)
        #: cut RMSE at the kept epoch (candidates are compared on it)
        self.best_rmse = float("inf")
        #: all-rows RMSE of the kept epoch (the epoch is chosen on it)
        self.best_rmse_all_rows = float("inf")
        self.best_state: dict | None = None
        self.best_epoch = -1
        self._val_sums = torch.zeros(4, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x)

    # ------------------------------------------------------------------ losses
    def losses(self, batch) -> dict[str, torch.Tensor]:
        """All loss terms of a batch (unweighted), in units of the cap.

        Every ensemble member gets its own data and physics terms (averaged over members),
        so each member is a complete physics-informed model; the damage law is shared by
        the fleet. Member k sees no row of its held-out fold, in any term. `rul` / `r_tc`
        are the out-of-fold prediction and its residual (what validation reports).
        """
        (x, x_next, y, _y_next, dt, rul_raw, has_next, labelled, fold, donor_fold,
         survived) = batch[:11]
        rul, health = self.net.members(x)  # (K, n)
        rul_n, health_n = self.net.members(x_next)
        cap = self.cap
        # (K, n): rows member k trains on (a virtual row is held out with two folds)
        member = self.member_fold[:, None]
        seen = (member != fold[None, :]) & (member != donor_fold[None, :])
        pairs = (has_next > 0) & seen
        known = (labelled > 0) & seen
        data = physics.masked_mean_square((rul - y) / cap, known)
        r_tc, m_known = physics.time_consistency_residual(rul, rul_n, dt, cap, target_t=rul_raw)
        # Unlabelled rows: the prediction decides whether the pair is past the plateau, with a
        # margin (UNLABELLED_REGIME_SHARE of the cap) so that prediction errors near the
        # knee of the capped target do not impose a slope of -1 where the target is flat.
        _, m_pred = physics.time_consistency_residual(rul, rul_n, dt, UNLABELLED_REGIME_SHARE * cap)
        m_tc = torch.where(known, m_known, m_pred)
        tc = physics.masked_mean_square(r_tc / cap, m_tc & pairs)
        # (a') unlabelled (censored) rows: RUL(t) >= the cycles the asset kept running
        censored = (labelled <= 0) & seen
        tc = tc + physics.masked_mean_square(
            physics.censored_rul_residual(rul, survived, cap) / cap, censored
        )
        law = physics.masked_mean_square(self.damage_law.residual(rul, health), seen)
        mono = physics.masked_mean_square(
            physics.monotone_damage_residual(1.0 - health, 1.0 - health_n), pairs
        )
        oof = out_of_fold_mean(rul, self.member_fold, fold)
        return {
            "data": data,
            "tc": tc,
            "dl": law + mono,
            "rul": oof,
            "r_tc": oof - out_of_fold_mean(rul_n, self.member_fold, fold) - dt,
            "m_tc": m_known & (has_next > 0) & (labelled > 0) & (fold >= 0),
        }

    def training_step(self, batch, batch_idx):
        hp = self.hparams
        t = self.losses(batch)
        loss = t["data"] + hp.weight_time_consistency * t["tc"] + hp.weight_damage_law * t["dl"]
        bs = batch[0].shape[0]
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/data_loss", t["data"], on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/physics_tc", t["tc"], on_step=False, on_epoch=True, batch_size=bs)
        self.log("train/physics_dl", t["dl"], on_step=False, on_epoch=True, batch_size=bs)
        return loss

    # -------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(6, dtype=torch.float64)

    def validation_step(self, batch, batch_idx):
        t = self.losses(batch)
        y, rul_raw, weight = batch[2], batch[5], batch[11]
        err = (t["rul"] - y).double()  # validation rows are labelled, each in one fold
        cut_err = (t["rul"] - rul_raw).double()  # at a cut: against the uncapped truth
        m = t["m_tc"]
        self._val_sums += torch.stack(
            [
                (weight.double() * cut_err * cut_err).sum(),
                weight.double().sum(),
                (t["r_tc"][m].double() ** 2).sum(),
                m.sum().double(),
                (err * err).sum(),
                torch.tensor(float(err.numel()), dtype=torch.float64),
            ]
        ).cpu()

    def on_validation_epoch_end(self) -> None:
        s = self._val_sums
        rmse = float((s[0] / s[1].clamp_min(1e-12)).sqrt())
        rmse_all_rows = float((s[4] / s[5].clamp_min(1)).sqrt())
        phys = float((s[2] / s[3].clamp_min(1)).sqrt())
        self.log("val/rmse", rmse)
        self.log("val/rmse_all_rows", rmse_all_rows)
        self.log("val/physics_residual", phys)
        self.log("physics/alpha", float(self.damage_law.alpha.detach()))
        # Keep the best weights in memory: cheaper than checkpoint files, and the caller
        # restores them after early stopping (Lightning's EarlyStopping does not).
        if not self.trainer.sanity_checking and rmse_all_rows < self.best_rmse_all_rows:
            self.best_rmse_all_rows = rmse_all_rows
            self.best_rmse = rmse
            self.best_epoch = int(self.current_epoch)
            self.best_state = copy.deepcopy(self.state_dict())

    # ---------------------------------------------------- resume (training.candidates)
    #: The kept epoch lives outside the state dict (it is a copy of it): a checkpoint carries
    #: it, so a run resumed after a kill keeps the best epoch it had found before.
    _KEPT = ("best_rmse", "best_rmse_all_rows", "best_state", "best_epoch")

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["twinops_kept_epoch"] = {k: getattr(self, k) for k in self._KEPT}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        for k, v in checkpoint.get("twinops_kept_epoch", {}).items():
            setattr(self, k, v)

    def configure_optimizers(self):
        hp = self.hparams
        opt = torch.optim.AdamW(
            self.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay
        )
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hp.max_epochs))
        return {"optimizer": opt, "lr_scheduler": sched}
