"""Candidate training: one seeded Lightning run per candidate feature set, the best kept.

    fit ─► train_candidates(frame, {name: (columns, ts)}, ...)
              ├─ first candidate: this process ─┐
              └─ the others: spawned workers ───┴─► {name: (datamodule, module, epochs)},
                 (one per core, large frames)       each at its epoch (chosen on all rows)
                                                    with its out-of-fold cut val/rmse
        ─► training.blend: the feature sets of a variant blended into one ensemble
        ─► fit keeps the lowest cut val/rmse

Why compare feature sets per fleet: some features pay only with enough failures (the
`*_vs_start` group of features.transforms helps a fleet with many run-to-failure assets and
hurts a small one). Which side a fleet is on is answered on the out-of-fold
cut validation (settings.training.select_features; off = every feature,
half the CPU time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Name of the candidate feature set that keeps every feature column.
ALL_FEATURES = "all"

#: Fewest training rows (real and virtual) for which `fit` starts worker processes on its
#: own (`training.workers` 0). A worker pays when one candidate's training lasts longer than
#: the worker's start (spawn, torch and Lightning imports, the frame pickled over); the two
#: break even at about this many rows, and both scale with the CPU, so a row count carries
#: over to other machines (docs/experiments.md#worker-processes has the measurements).
AUTO_WORKERS_MIN_ROWS = 15_000


def feature_candidates(cols: list[str]) -> dict[str, list[str]]:
    """Feature sets `fit` compares: all of `cols`, and `cols` without each optional group
    of `features.transforms.OPTIONAL_FEATURE_GROUPS` that `cols` contains ("without_<group>").
    """
    from features.transforms import OPTIONAL_FEATURE_GROUPS

    out = {ALL_FEATURES: list(cols)}
    for group, suffix in OPTIONAL_FEATURE_GROUPS.items():
        kept = [c for c in cols if not c.endswith(f"_{suffix}")]
        if 0 < len(kept) < len(cols):
            out[f"without_{group}"] = kept
    return out


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's banner lines and its warnings that do not apply to this model
    (a small in-memory dataset needs no loader workers; CPU is chosen on purpose)."""
    names = ["lightning.pytorch", "lightning.pytorch.utilities.rank_zero", "lightning.fabric"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for msg in (
                ".*does not have many workers.*",
                ".*number of training batches.*",
                ".*GPU available but not used.*",
                ".*LeafSpec.*",
                ".*litlogger.*",
                # a resumed run checkpoints into the directory its killed run wrote
                ".*Checkpoint directory .* exists and is not empty.*",
            ):
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


#: Optimizer steps per epoch a small training frame still gets (its batches shrink).
MIN_STEPS_PER_EPOCH = 16


def batch_size(n_rows: int, configured: int) -> int:
    """`configured`, or smaller for a small fleet: every epoch takes at least
    MIN_STEPS_PER_EPOCH steps (batches of at least 32 rows). Why: with a few hundred rows
    (a small pump fleet) batches of 256 give a handful of steps in a whole run, and the
    network ends where it started; a large frame (C-MAPSS FD001, 17k rows) is unchanged."""
    return int(min(configured, max(32, n_rows // MIN_STEPS_PER_EPOCH)))


def build(frame, cols: list[str], ts, virtual_parents=None):
    """The datamodule and the untrained module of one candidate (both deterministic in
    `ts.seed`, so a worker process and this one build the same pair). A candidate without
    virtual assets (`ts.time_scale_copies` 0: the data-only baseline) leaves them out of
    the frame."""
    from training.datamodule import RULDataModule
    from training.module import RULModule

    if virtual_parents and not ts.time_scale_copies:
        frame = frame[~frame["asset_id"].astype(str).isin(virtual_parents)]
        virtual_parents = None

    n_folds = min(ts.n_folds, ts.n_members)
    dm = RULDataModule(
        frame, cols, ts.rul_cap, n_folds, batch_size(len(frame), ts.batch_size), ts.seed,
        ts.pair_max_gap, virtual_parents,
        ts.rul_per_cycle,
    )
    module = RULModule(
        n_features=len(cols),
        hidden_size=ts.hidden_size,
        rul_cap=ts.rul_cap,
        learning_rate=ts.learning_rate,
        weight_time_consistency=ts.weight_time_consistency,
        weight_damage_law=ts.weight_damage_law,
        max_epochs=ts.max_epochs,
        n_members=ts.n_members,
        n_folds=dm.n_folds,
    )
    return dm, module


#: In a candidate's resume directory: Lightning's checkpoint of its latest epoch, and the
#: outcome of a candidate that finished (so that a rerun does not train it again).
LAST_CHECKPOINT, FINISHED = "last.ckpt", "finished.pt"


def train_one(frame, cols: list[str], ts, accelerator: str, virtual_parents=None,
              label: str = ALL_FEATURES, progress: bool = True, resume_dir=None,
              callbacks=()):
    """One seeded training run on `cols`: (datamodule, module with its best weights, epochs).

    `progress`: an epoch bar (training.progress) on stderr, labelled with the candidate.
    `resume_dir`: where the run checkpoints every epoch (Lightning's ModelCheckpoint) and
    resumes from (`Trainer.fit(ckpt_path=...)`) after a kill; a finished run leaves its
    outcome there instead (`resume_directory` names the directory). `callbacks`: more
    Lightning callbacks (the tests' simulated kill).
    """
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    from training.progress import EpochBar

    # One intra-op thread: for a network this small, thread hand-offs cost more than the
    # math they split.
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    L.seed_everything(ts.seed, workers=True, verbose=False)
    dm, module = build(frame, cols, ts, virtual_parents)
    if resume_dir is not None and (Path(resume_dir) / FINISHED).exists():
        torch.set_num_threads(old_threads)
        return _finished(Path(resume_dir), dm, module, label)
    callbacks = [EarlyStopping("val/rmse_all_rows", patience=8, min_delta=0.01, mode="min"),
                 *callbacks]
    if progress:
        callbacks.append(EpochBar(f"train {label} ({ts.n_members} members)", ts.max_epochs))
    resume = _checkpointing(Path(resume_dir), label) if resume_dir is not None else {}
    try:
        with _quiet_lightning():
            trainer = L.Trainer(
                max_epochs=ts.max_epochs,
                accelerator=accelerator,
                devices=1,
                logger=False,
                enable_checkpointing=bool(resume),
                enable_progress_bar=False,
                enable_model_summary=False,
                deterministic=True,
                num_sanity_val_steps=0,
                callbacks=[*callbacks, *resume.get("callbacks", [])],
                plugins=resume.get("plugins"),
            )
            trainer.fit(module, datamodule=dm, ckpt_path=resume.get("ckpt_path"))
    finally:
        torch.set_num_threads(old_threads)
    if module.best_state is not None:
        module.load_state_dict(module.best_state)
    epochs = int(trainer.current_epoch)
    if resume_dir is not None:
        _save_finished(Path(resume_dir), module, epochs)
    return dm, module, epochs


def _checkpointing(resume_dir: Path, label: str) -> dict:
    """Trainer arguments of a run that checkpoints into `resume_dir` after every epoch, and
    the checkpoint to resume from where a killed run left one.

    ModelCheckpoint without a monitor keeps one file, rewritten after every validation; it
    holds the weights, optimiser, scheduler and loop state, early stopping's patience, and
    (RULModule / RULDataModule hooks) the kept epoch and the shuffle generator, so the
    resumed run goes on as the uninterrupted one would have. AtomicCheckpointIO makes each
    rewrite all-or-nothing.
    """
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    last = resume_dir / LAST_CHECKPOINT
    ckpt_path = None
    if last.exists():
        ckpt_path = last
        epoch = int(torch.load(last, map_location="cpu", weights_only=False)["epoch"])
        # what `twinops train` prints on a rerun (the train flow logs its prints)
        print(f"resuming {label} from its checkpoint after epoch {epoch + 1} ({last})",
              flush=True)
    return {
        "callbacks": [ModelCheckpoint(dirpath=resume_dir, filename=last.stem, save_top_k=1,
                                      enable_version_counter=False)],
        "plugins": [AtomicCheckpointIO()],
        "ckpt_path": ckpt_path,
    }


def AtomicCheckpointIO():  # noqa: N802 - builds the class on first use (lightning import)
    """Lightning's checkpoint writer, through features.atomic. Why not Lightning's own
    `_atomic_save`: it writes a temp file in /tmp and moves it over, which is a copy (not a
    rename) when the state directory is on another filesystem, and it never fsyncs, so a
    kill -9 or a crash mid-copy can leave a truncated checkpoint that cannot resume."""
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class _Atomic(TorchCheckpointIO):
        def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
            import torch

            from features import atomic

            with atomic.replacing(path) as tmp:
                torch.save(checkpoint, tmp)

    return _Atomic()


def _save_finished(resume_dir: Path, module, epochs: int) -> None:
    """A finished candidate's outcome, so that a rerun after a later kill skips it; its
    epoch checkpoint is no longer needed."""
    import torch

    from features import atomic

    with atomic.replacing(resume_dir / FINISHED) as tmp:
        torch.save({"state": module.state_dict(), "best_rmse": float(module.best_rmse),
                    "best_epoch": int(module.best_epoch), "epochs": epochs}, tmp)
    (resume_dir / LAST_CHECKPOINT).unlink(missing_ok=True)


def _finished(resume_dir: Path, dm, module, label: str):
    import torch

    won = torch.load(resume_dir / FINISHED, map_location="cpu", weights_only=True)
    module.load_state_dict(won["state"])
    module.best_rmse, module.best_epoch = won["best_rmse"], won["best_epoch"]
    print(f"resuming {label}: it finished before ({won['epochs']} epochs), not trained again",
          flush=True)
    return dm, module, int(won["epochs"])


def resume_directory(root, frame, candidates: dict, accelerator: str, parents) -> Path:
    """The resume directory of one training under `root`, named by a hash of everything its
    runs depend on (the frame, each candidate's columns and settings, the virtual assets,
    the device): a rerun of the same training finds its checkpoints, any other training
    starts afresh."""
    import hashlib
    import json

    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    digest.update(json.dumps({n: [c, t.model_dump()] for n, (c, t) in candidates.items()},
                             sort_keys=True, default=str).encode())
    digest.update(json.dumps([accelerator, sorted((parents or {}).items())],
                             default=str).encode())
    return Path(root) / digest.hexdigest()[:16]


def _candidate_dir(resume_root, name: str):
    return None if resume_root is None else Path(resume_root) / name.replace("/", "__")


@dataclass
class _Outcome:
    """What a worker process sends back for one candidate: its best weights as numpy arrays
    (plain pickles: no shared-memory tensors outliving the worker) and its scores."""

    state: dict[str, np.ndarray]
    best_rmse: float
    best_epoch: int
    epochs: int


def _train_in_worker(frame, cols: list[str], ts, virtual_parents, label: str,
                     resume_dir) -> _Outcome:
    """`train_one` in a worker process (a top-level function, so that it pickles). No bar:
    two bars on one terminal overwrite each other; this process shows its own."""
    _, module, epochs = train_one(frame, cols, ts, "cpu", virtual_parents, label=label,
                                  progress=False, resume_dir=resume_dir)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    return _Outcome(state, float(module.best_rmse), int(module.best_epoch), epochs)


def candidate_workers(ts, n_candidates: int, accelerator: str, n_rows: int) -> int:
    """Processes `fit` trains its candidate feature sets in, this one included, at most one
    per candidate: `ts.workers`, or with 0 one per CPU core this process may use when the
    training frame has at least AUTO_WORKERS_MIN_ROWS rows (else 1). 1 on a GPU (one
    device) and in a daemonic process (which may not start children)."""
    import multiprocessing

    if accelerator != "cpu" or multiprocessing.current_process().daemon:
        return 1
    if ts.workers:
        wanted = ts.workers
    elif n_rows < AUTO_WORKERS_MIN_ROWS:
        wanted = 1
    elif hasattr(os, "sched_getaffinity"):
        wanted = len(os.sched_getaffinity(0))
    else:
        wanted = os.cpu_count() or 1
    return max(1, min(wanted, n_candidates))


def train_candidates(frame, candidates: dict[str, tuple[list[str], object]], accelerator,
                     parents, resume_root=None) -> dict:
    """Train every candidate {name: (feature columns, its TrainingSettings)}: {name:
    (datamodule, module with its best weights, epochs)}, each module's `best_rmse` its
    out-of-fold cut validation RMSE (training.truncation), the figure `fit` chooses on.

    The first candidate (all features) trains in this process; with more than one worker
    (`candidate_workers`) the others train at the same time in spawned worker processes.
    Why processes: each run uses one thread (see `train_one`), so a second core would sit
    idle; threads cannot share it out, because the seed (`seed_everything`), the thread count
    and the GIL-bound Python side of a Lightning step are process-wide. Why this process keeps
    one: a worker's start then overlaps this process's own run instead of adding to it.
    Every run is seeded and deterministic on one thread, so a worker's weights are the ones
    this process would have trained: each worker's candidate gets its datamodule and module
    rebuilt here (cheap, deterministic) and its weights loaded. Stdlib `concurrent.futures`
    with spawned workers: no fork of a process that may already hold threads (Prefect,
    torch); Prefect's own task runners would fork or thread, Dask is not a dependency yet.

    `resume_root` (`resume_directory`): every candidate checkpoints each epoch under it, and
    a rerun after a kill resumes each from its last checkpoint (at most one epoch lost).
    """
    import torch

    (first, (first_cols, first_ts)), *rest = candidates.items()
    workers = candidate_workers(first_ts, len(candidates), accelerator, len(frame))
    if workers <= 1 or not rest:
        return {name: train_one(frame, c, t, accelerator, parents, label=name,
                                resume_dir=_candidate_dir(resume_root, name))
                for name, (c, t) in candidates.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx) as pool:
        futures = {n: pool.submit(_train_in_worker, frame, c, t, parents, n,
                                  _candidate_dir(resume_root, n)) for n, (c, t) in rest}
        fits = {first: train_one(frame, first_cols, first_ts, accelerator, parents,
                                 label=first, resume_dir=_candidate_dir(resume_root, first))}
        outcomes = {name: f.result() for name, f in futures.items()}
    for name, won in outcomes.items():
        dm, module = build(frame, *candidates[name], parents)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in won.state.items()})
        module.best_rmse, module.best_epoch = won.best_rmse, won.best_epoch
        fits[name] = (dm, module, won.epochs)
    return fits
