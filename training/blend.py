"""Blends of candidate feature sets: the members of several candidates as one deep ensemble.

    fits {"pinn/all": (dm, module, epochs), "pinn/without_vs_start": ...}
        │ per physics variant with 2+ feature sets: every member of every set in one RULNet
        │ over all the columns (a set's dropped columns get zero input weights)
        ▼
    {"pinn/blend": (dm of "all", merged module, epochs)}  ── scored like any candidate
                                                            (out-of-fold cut RMSE), kept
                                                            only where it is the lowest

Why: which feature set wins the cut validation flips from seed to seed on a fleet of 100
units (FD001: `all` on three seeds, `without_vs_start` on two, docs/benchmarks.md), and a
choice made on noise passes the noise to the test. Averaging is the deep ensemble's own
remedy for variance, and it costs no training: the candidates are already trained. The
merge is exact, not an approximation: the scaler is fitted per column on the same real
rows for every candidate (training.datamodule), every candidate's members hold out fold
k mod F, so member j of a set of K (K a multiple of F) sits at index offset + j with the
same held-out fold, and the merged network's out-of-fold mean is the mean of the sets'.
Why not across physics variants: the shipped model then says plainly whether it carries
the physics (`physics_variant`), and the benchmark's two rows stay the two methods.
"""

from __future__ import annotations

#: Name of the blended feature set of a variant ("pinn/blend"); its member sets are in
#: `fit`'s param `blended_feature_sets`.
BLEND = "blend"


def cut_rmse(dm, module) -> float:
    """The out-of-fold RMSE at random cuts of life (training.truncation) of `module` on the
    validation rows of `dm`: the figure candidates are compared on."""
    import torch

    from training.network import out_of_fold_mean
    from training.truncation import weighted_rmse

    net, vp = module.net.cpu().eval(), dm.val_pairs
    with torch.inference_mode():
        members = net.members(torch.from_numpy(vp.x))[0]
        pred = out_of_fold_mean(members, module.member_fold.cpu(), torch.from_numpy(vp.fold))
    return weighted_rmse(pred.double().numpy() - vp.rul_raw, vp.weight)


def merged_state(nets, columns: list[list[str]], all_columns: list[str]) -> dict:
    """The state_dict of one RULNet over `all_columns` holding every member of `nets` (net i
    reads `columns[i]`), in order: the first layer's weights scattered to their columns
    (zeros elsewhere), every tensor concatenated on the member axis."""
    import torch

    index = {c: i for i, c in enumerate(all_columns)}
    first = "trunk.0.weight"  # the input layer (training.network.RULNet)
    states = [net.state_dict() for net in nets]
    out = {}
    for key in states[0]:
        parts = []
        for state, cols in zip(states, columns, strict=True):
            w = state[key]
            if key == first:
                full = w.new_zeros(w.shape[0], len(all_columns), w.shape[2])
                full[:, [index[c] for c in cols]] = w
                w = full
            parts.append(w)
        out[key] = torch.cat(parts)
    return out


def blends(fits: dict, candidates: dict) -> tuple[dict, dict, dict]:
    """For each physics variant with two or more trained feature sets, the blend of all of
    them: ({"<variant>/blend": (dm, module, epochs)}, {"<variant>/blend": (columns, ts)},
    {"<variant>/blend": [its feature sets]}), each module's `best_rmse` its cut RMSE. No blend
    where the members do not divide evenly into the folds (the merge would mix up which
    member holds out which fold)."""
    from training.module import RULModule

    by_variant: dict[str, list[str]] = {}
    for name in fits:
        by_variant.setdefault(name.split("/", 1)[0], []).append(name)
    new_fits, new_candidates, sets = {}, {}, {}
    for variant, names in by_variant.items():
        if len(names) < 2:
            continue
        dm = fits[names[0]][0]  # every candidate has the same folds and validation rows
        modules = [fits[n][1] for n in names]
        all_cols, ts = candidates[names[0]]  # the first candidate keeps every feature
        if any(m.hparams.n_members % dm.n_folds for m in modules):
            continue
        hp = modules[0].hparams
        n_members = sum(m.hparams.n_members for m in modules)
        merged = RULModule(
            n_features=len(all_cols), hidden_size=hp.hidden_size, n_layers=hp.n_layers,
            dropout=hp.dropout, rul_cap=hp.rul_cap, learning_rate=hp.learning_rate,
            weight_time_consistency=hp.weight_time_consistency,
            weight_damage_law=hp.weight_damage_law, max_epochs=hp.max_epochs,
            n_members=n_members, n_folds=dm.n_folds,
        )
        merged.net.load_state_dict(merged_state([m.net for m in modules],
                                                [candidates[n][0] for n in names], all_cols))
        # the fleet's damage law: the first candidate's (each set fits its own alpha)
        merged.damage_law.load_state_dict(modules[0].damage_law.state_dict())
        merged.best_epoch = modules[0].best_epoch
        merged.best_rmse = cut_rmse(dm, merged)
        name = f"{variant}/{BLEND}"
        new_fits[name] = (dm, merged, max(fits[n][2] for n in names))
        new_candidates[name] = (list(all_cols), ts.model_copy(update={"n_members": n_members}))
        sets[name] = [n.split("/", 1)[1] for n in names]
    return new_fits, new_candidates, sets
