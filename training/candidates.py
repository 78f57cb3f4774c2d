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


def train_one(frame, cols: list[str], ts, accelerator: str, virtual_parents=None,
              label: str = ALL_FEATURES, progress: bool = True):
    """One seeded training run on `cols`: (datamodule, module with its best weights, epochs).

    `progress`: an epoch bar (training.progress) on stderr, labelled with the candidate.
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
    callbacks = [EarlyStopping("val/rmse_all_rows", patience=8, min_delta=0.01, mode="min")]
    if progress:
        callbacks.append(EpochBar(f"train {label} ({ts.n_members} members)", ts.max_epochs))
    try:
        with _quiet_lightning():
            trainer = L.Trainer(
                max_epochs=ts.max_epochs,
                accelerator=accelerator,
                devices=1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                deterministic=True,
                num_sanity_val_steps=0,
                callbacks=callbacks,
            )
            trainer.fit(module, datamodule=dm)
    finally:
        torch.set_num_threads(old_threads)
    if module.best_state is not None:
        module.load_state_dict(module.best_state)
    return dm, module, int(trainer.current_epoch)


@dataclass
class _Outcome:
    """What a worker process sends back for one candidate: its best weights as numpy arrays
    (plain pickles: no shared-memory tensors outliving the worker) and its scores."""

    state: dict[str, np.ndarray]
    best_rmse: float
    best_epoch: int
    epochs: int


def _train_in_worker(frame, cols: list[str], ts, virtual_parents) -> _Outcome:
    """`train_one` in a worker process (a top-level function, so that it pickles). No bar:
    two bars on one terminal overwrite each other; this process shows its own."""
    _, module, epochs = train_one(frame, cols, ts, "cpu", virtual_parents, progress=False)
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
                     parents) -> dict:
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
    """
    import torch

    (first, (first_cols, first_ts)), *rest = candidates.items()
    workers = candidate_workers(first_ts, len(candidates), accelerator, len(frame))
    if workers <= 1 or not rest:
        return {name: train_one(frame, c, t, accelerator, parents, label=name)
                for name, (c, t) in candidates.items()}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers - 1, mp_context=ctx) as pool:
        futures = {n: pool.submit(_train_in_worker, frame, c, t, parents) for n, (c, t) in rest}
        fits = {first: train_one(frame, first_cols, first_ts, accelerator, parents,
                                 label=first)}
        outcomes = {name: f.result() for name, f in futures.items()}
    for name, won in outcomes.items():
        dm, module = build(frame, *candidates[name], parents)
        module.load_state_dict({k: torch.from_numpy(v) for k, v in won.state.items()})
        module.best_rmse, module.best_epoch = won.best_rmse, won.best_epoch
        fits[name] = (dm, module, won.epochs)
    return fits
