"""What the review report says about candidate vs champion: pure functions of the evidence.

    Evidence (predictions with cut_weight, metrics, run params, tags, trained units)
        ├─► scoring_keys   the RMSE / PHM08 keys the gates compare (cut points when both
        │                  models have them, pipelines.gates.review_gates)
        ├─► per_asset      per evaluation asset: RMSE, bias, PHM08 at the cut points
        ├─► band_errors    the same per true-RUL band, and which bands make a change
        ├─► config_rows    the two training configurations, differences flagged
        ├─► data_change    same data as the champion / other DVC hash / units added, removed
        └─► headline       one sentence: what changed and whether to approve

Why the cut points: the gates judge a candidate there (every unit weighted equally, each
scored at random cuts of 30-95% of its life against its uncapped RUL, training.truncation),
so the report breaks down exactly that figure; the all-rows figures can rank two models
the other way and are only shown labelled as such.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipelines.evidence import Evidence, ModelEvidence
from pipelines.gates import GateResult

#: True-RUL band edges as shares of the target cap: 0-25, 25-50, 50-75, 75-125, 125+ cycles
#: at the turbofan's cap of 125 (pipelines.evidence.RUL_BANDS), the same stages of life for
#: a type whose RUL is in hours.
BAND_EDGES_OF_CAP = (0.0, 0.2, 0.4, 0.6, 1.0, np.inf)
#: Training params named first in the configuration table and the headline, in this order.
KEY_PARAMS = ("feature_set", "blended_feature_sets", "physics_variant", "physics", "max_epochs",
              "learning_rate", "n_members", "hidden_size", "batch_size", "n_features",
              "time_scale_copies", "weight_time_consistency", "weight_damage_law", "rul_cap",
              "seed")
#: What the training run logged as metrics that describe the fit rather than score it.
FIT_METRICS = ("epochs", "best_epoch", "n_train_rows", "n_virtual_rows", "train_seconds")
#: Relative RMSE changes smaller than this read as "about as good as".
SAME = 0.01


def scoring_keys(ev: Evidence) -> tuple[str, str, bool]:
    """(rmse key, PHM08 key, at the cut points?): the pair the gates compare."""
    models = [ev.candidate] + ([ev.champion] if ev.champion else [])
    cut = all("cut_rmse" in m.metrics for m in models)
    return ("cut_rmse", "cut_phm08_per_unit", True) if cut else ("rmse", "phm08_score", False)


def cut_rows(m: ModelEvidence) -> pd.DataFrame:
    """The rows with a cut weight, with their error (pred - uncapped truth) and PHM08 term."""
    from training.metrics import phm08_terms

    p = m.predictions
    p = p[p["cut_weight"] > 0]
    err = p["rul"].to_numpy(dtype=float) - p["true_rul"].to_numpy(dtype=float)
    return pd.DataFrame({"asset_id": p["asset_id"].astype(str).to_numpy(),
                         "true_rul": p["true_rul"].to_numpy(dtype=float), "w": p["cut_weight"],
                         "err": err, "phm08": phm08_terms(p["true_rul"], p["rul"])})


def per_asset(m: ModelEvidence) -> pd.DataFrame:
    """Per asset: RMSE, bias (mean pred - truth, > 0 = predicts failure late) and PHM08 at
    its cut points, and how many cut rows; the cut weights of one asset sum to 1."""
    c = cut_rows(m)
    g = c.assign(we2=c.w * c.err ** 2, we=c.w * c.err, wp=c.w * c.phm08).groupby("asset_id")
    s = g[["w", "we2", "we", "wp"]].sum()
    return pd.DataFrame({"rmse": np.sqrt(s.we2 / s.w), "bias": s.we / s.w, "phm08": s.wp / s.w,
                         "cuts": g.size()})


def asset_table(ev: Evidence) -> pd.DataFrame:
    """per_asset of the candidate (and the champion, `champ_*`), worst candidate RMSE first."""
    t = per_asset(ev.candidate)
    if ev.champion is not None:
        t = t.join(per_asset(ev.champion).add_prefix("champ_"), how="outer")
    return t.sort_values("rmse", ascending=False, kind="stable")


def bands(ev: Evidence) -> list[tuple[float, float]]:
    """True-RUL bands (low, high) from the candidate's target cap (125 when not logged)."""
    try:
        cap = float(ev.candidate.params.get("rul_cap", 125))
    except ValueError:
        cap = 125.0
    edges = [e * cap for e in BAND_EDGES_OF_CAP]
    return list(zip(edges[:-1], edges[1:], strict=True))


def band_label(lo: float, hi: float) -> str:
    return f"{lo:g}+" if not np.isfinite(hi) else f"{lo:g}–{hi:g}"


def band_errors(m: ModelEvidence, edges: list[tuple[float, float]]) -> pd.DataFrame:
    """Per true-RUL band at the cut points: RMSE, bias, cut rows, and `sq`: the band's
    weighted squared error over the total weight (the bands' `sq` add up to cut RMSE²)."""
    c = cut_rows(m)
    total = c.w.sum()
    rows = []
    for lo, hi in edges:
        b = c[(c.true_rul >= lo) & (c.true_rul < hi)]
        w = b.w.sum()
        rows.append({"band": band_label(lo, hi), "rmse": np.sqrt((b.w * b.err ** 2).sum() / w)
                     if w else np.nan, "bias": (b.w * b.err).sum() / w if w else np.nan,
                     "rows": len(b), "sq": (b.w * b.err ** 2).sum() / total if total else 0.0})
    return pd.DataFrame(rows).set_index("band")


def where_it_changes(ev: Evidence) -> str | None:
    """The true-RUL range that makes most (>= 60%) of the change in cut RMSE², e.g.
    "25–75" (adjacent bands merged) or "0–25 and 75–125"; None without a champion."""
    if ev.champion is None:
        return None
    edges = bands(ev)
    delta = (band_errors(ev.candidate, edges).sq - band_errors(ev.champion, edges).sq)
    sign = np.sign(delta.sum())
    if sign == 0:
        return None
    share = (delta * sign).clip(lower=0)
    chosen, acc = [], 0.0
    for i in np.argsort(-share.to_numpy(), kind="stable"):
        chosen.append(int(i))
        acc += share.iloc[i]
        if acc >= 0.6 * share.sum():
            break
    runs: list[list[int]] = []
    for i in sorted(chosen):
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return " and ".join(band_label(edges[r[0]][0], edges[r[-1]][1]) for r in runs)


def config_rows(ev: Evidence) -> list[tuple[str, str, str, bool]]:
    """(setting, candidate, champion, differs) for every training param and fit figure,
    the differing ones first, each group in KEY_PARAMS order then by name."""
    models = [ev.candidate] + ([ev.champion] if ev.champion else [])

    def value(m: ModelEvidence, key: str) -> str:
        if key in m.params:
            return m.params[key]
        v = m.training_metrics.get(key.removesuffix(" (trained)"))
        return "—" if v is None else (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}")

    params = sorted({k for m in models for k in m.params},
                    key=lambda k: (KEY_PARAMS.index(k) if k in KEY_PARAMS else len(KEY_PARAMS), k))
    keys = params + [f"{k} (trained)" if k == "epochs" else k for k in FIT_METRICS
                     if any(k in m.training_metrics for m in models)]
    rows = []
    for key in keys:
        cand = value(ev.candidate, key)
        champ = value(ev.champion, key) if ev.champion else "—"
        # the fit's duration always differs: not a configuration change
        differs = ev.champion is not None and cand != champ and key != "train_seconds"
        rows.append((key, cand, champ, differs))
    return sorted(rows, key=lambda r: not r[3])


def data_change(ev: Evidence) -> str:
    """One line: the candidate's training data against the champion's (DVC hash, units)."""
    if ev.champion is None:
        return "no champion: nothing to compare the data with"
    unknown = {"", "unknown", "—"}
    ca = ev.candidate.tags.get("dvc_data_hash", "")
    ch = ev.champion.tags.get("dvc_data_hash", "")
    cu, hu = set(ev.candidate.trained_units), set(ev.champion.trained_units)
    units = ""
    if cu and hu:
        added, removed = sorted(cu - hu), sorted(hu - cu)
        units = (f"the same {len(cu)} run-to-failure units" if not (added or removed) else
                 f"{len(added)} units added{_few(added)}, {len(removed)} removed{_few(removed)}")
    if ca in unknown or ch in unknown:
        return ("DVC data hash not recorded for "
                f"{'both' if ca in unknown and ch in unknown else 'one of them'}: cannot tell "
                "whether the data changed" + (f"; {units}" if units else ""))
    if ca == ch:
        return f"same data as the champion (DVC {ca[:12]})" + (f", {units}" if units else "")
    return (f"different data: DVC {ca[:12]} (champion {ch[:12]})" + (f"; {units}" if units
                                                                      else ""))


def _few(units: list[str], n: int = 5) -> str:
    if not units:
        return ""
    more = f", +{len(units) - n} more" if len(units) > n else ""
    return f" ({', '.join(units[:n])}{more})"


def headline(ev: Evidence, gates: GateResult) -> str:
    """One sentence: how the candidate compares with the champion at the scoring the gates
    use, where the change is, what was trained differently, and the gates' verdict."""
    cand = f"v{ev.candidate.version}"
    rmse_key, _, cut = scoring_keys(ev)
    where = "at the cut points" if cut else "over all rows"
    c = ev.candidate.metrics.get(rmse_key, np.nan)
    verdict = (f"all gates pass: {cand} can be approved by a reviewer" if gates.passed else
               f"the gates refuse it ({', '.join(x.name for x in gates.checks if not x.passed)})"
               ": do not approve")
    if ev.champion is None:
        what = ("was NOT compared with the champion (it could not be loaded)" if ev.notes
                else "has no champion to compare with (the first model)")
        return f"{cand} {what}; RMSE {where} {c:.2f} (lower is better); {verdict}."
    champ = f"v{ev.champion.version}"
    h = ev.champion.metrics.get(rmse_key, np.nan)
    rel = c / h - 1 if h else np.nan
    if not np.isfinite(rel):
        compare = f"{cand} vs {champ}: RMSE {where} {c:.2f} vs {h:.2f}"
    elif abs(rel) < SAME:
        compare = f"{cand} is about as good as {champ} in RMSE {where} ({c:.2f} vs {h:.2f})"
    else:
        compare = (f"{cand} is {abs(rel):.0%} {'worse' if rel > 0 else 'better'} than {champ} "
                   f"in RMSE {where} ({c:.2f} vs {h:.2f}, lower is better)")
        band = where_it_changes(ev) if cut else None
        if band:
            compare += f", mostly at true RUL {band}"
        if gates.passed and rel > 0:
            verdict = verdict.replace("all gates pass", "all gates pass (within tolerance)")
    # settings only (KEY_PARAMS first), not what the fit did with them (epochs trained)
    params = set(ev.candidate.params) | set(ev.champion.params)
    diffs = [(k, a, b) for k, a, b, d in config_rows(ev) if d and k in params][:3]
    trained = ("; trained with " + ", ".join(f"{k} {a} ({champ}: {b})" for k, a, b in diffs)
               if diffs else "; same training configuration")
    data = data_change(ev)
    data = (" on the same data" if data.startswith("same data") else
            " on different data" if data.startswith("different data") else "")
    return f"{compare}{trained}{data}; {verdict}."
