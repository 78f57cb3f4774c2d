"""Training resumes from its per-epoch Lightning checkpoint after a kill (training.candidates).

A kill is simulated by a callback that raises in the middle of an epoch: what a kill -9
leaves is the same (the checkpoint written after the last whole epoch, nothing after it).
The resumed run must end where the uninterrupted one ends, weight for weight: every piece
of training state (optimiser, scheduler, early stopping, kept epoch, shuffle order) has to
come back from the checkpoint for that to hold.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from features.settings import get_settings
from training.candidates import (
    FINISHED,
    LAST_CHECKPOINT,
    AtomicCheckpointIO,
    resume_directory,
    train_one,
)
from training.datamodule import infer_feature_columns
from training.synthetic import synthetic_frame

EPOCHS = 6


class Killed(RuntimeError):
    pass


class KillMidEpoch(L.Callback):
    """Raise at the second batch of epoch `epoch` (that epoch is half trained, not saved)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == 1:
            raise Killed(f"killed in epoch {self.epoch}")


class CountEpochs(L.Callback):
    def __init__(self):
        self.trained: list[int] = []

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.trained.append(trainer.current_epoch)


@pytest.fixture(scope="module")
def problem(tmp_path_factory):
    frame = synthetic_frame(n_assets=8, n_sensors=3, seed=1, t_min=60, t_max=90)
    s = get_settings(state_dir=tmp_path_factory.mktemp("state"), profile="tiny")
    s.training.max_epochs = EPOCHS
    s.training.time_scale_copies = 0
    return frame, infer_feature_columns(frame), s.training_settings()


@pytest.fixture(scope="module")
def uninterrupted(problem):
    frame, cols, ts = problem
    return train_one(frame, cols, ts, "cpu", progress=False)


def _same_weights(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_killed_run_resumes_at_its_last_epoch_and_ends_as_the_uninterrupted_one(
        problem, uninterrupted, tmp_path, capsys):
    frame, cols, ts = problem
    _, whole, whole_epochs = uninterrupted
    with pytest.raises(Killed):
        train_one(frame, cols, ts, "cpu", progress=False, resume_dir=tmp_path,
                  callbacks=[KillMidEpoch(3)])
    saved = torch.load(tmp_path / LAST_CHECKPOINT, map_location="cpu", weights_only=False)
    assert saved["epoch"] == 2  # epochs 0..2 whole; epoch 3, half done, is the one lost

    count = CountEpochs()
    _, resumed, epochs = train_one(frame, cols, ts, "cpu", progress=False,
                                   resume_dir=tmp_path, callbacks=[count])
    assert "resuming all from its checkpoint after epoch 3" in capsys.readouterr().out
    assert count.trained == list(range(3, EPOCHS))  # only the lost epoch and the rest
    assert epochs == whole_epochs == EPOCHS
    assert (resumed.best_epoch, resumed.best_rmse) == (whole.best_epoch, whole.best_rmse)
    assert _same_weights(resumed, whole)


def test_a_finished_run_is_not_trained_again(problem, uninterrupted, tmp_path, capsys):
    frame, cols, ts = problem
    train_one(frame, cols, ts, "cpu", progress=False, resume_dir=tmp_path)
    assert (tmp_path / FINISHED).exists() and not (tmp_path / LAST_CHECKPOINT).exists()
    count = CountEpochs()
    _, again, epochs = train_one(frame, cols, ts, "cpu", progress=False, resume_dir=tmp_path,
                                 callbacks=[count])
    assert count.trained == [] and "not trained again" in capsys.readouterr().out
    assert epochs == EPOCHS and _same_weights(again, uninterrupted[1])
    assert again.best_rmse == uninterrupted[1].best_rmse


def test_a_checkpoint_write_that_fails_leaves_the_previous_one(tmp_path):
    io = AtomicCheckpointIO()
    path = tmp_path / LAST_CHECKPOINT
    io.save_checkpoint({"epoch": 1}, path)
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises on a lambda
        io.save_checkpoint({"epoch": 2, "unpicklable": lambda: None}, path)
    assert torch.load(path, weights_only=False) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == [LAST_CHECKPOINT]  # no temp file left


def test_the_resume_directory_is_the_same_training_s_only(problem, tmp_path):
    frame, cols, ts = problem
    candidates = {"physics/all": (cols, ts)}
    here = resume_directory(tmp_path, frame, candidates, "cpu", {})
    assert here == resume_directory(tmp_path, frame.copy(), candidates, "cpu", {})
    other_frame = frame.assign(s0=frame["s0"] + 1e-9)
    assert here != resume_directory(tmp_path, other_frame, candidates, "cpu", {})
    more_epochs = ts.model_copy(update={"max_epochs": EPOCHS + 1})
    assert here != resume_directory(tmp_path, frame, {"physics/all": (cols, more_epochs)},
                                    "cpu", {})
