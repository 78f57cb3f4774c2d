"""A Lightning callback that shows a training run as one bar of epochs.

Lightning's own bar counts batches and redraws per step; a fit here is many short epochs
with early stopping, so an epoch bar with the out-of-fold RMSE says more in one line.
Imports lightning at module level: import it only inside functions.
"""

from __future__ import annotations

import lightning as L

from features.progress import progress


class EpochBar(L.Callback):
    """One bar per fit: an epoch a tick, the latest out-of-fold `val/rmse` beside it."""

    def __init__(self, desc: str, max_epochs: int):
        self.desc, self.max_epochs, self.bar = desc, max_epochs, None

    def on_fit_start(self, trainer, pl_module) -> None:
        self.bar = progress(desc=self.desc, total=self.max_epochs, unit="epoch")

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.bar is None or trainer.sanity_checking:
            return
        rmse = trainer.callback_metrics.get("val/rmse")
        if rmse is not None:
            self.bar.set_postfix(val_rmse=f"{float(rmse):.2f}", refresh=False)
        self.bar.update(1)

    def on_fit_end(self, trainer, pl_module) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.on_fit_end(trainer, pl_module)
