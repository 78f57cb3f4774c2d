"""The review report's figures, each a <figure> with its PNG inlined and a caption that says
what it shows and which way is better.

    predicted vs true   one 2D density (hexbin) panel per model: 8k points per model
                        overplotted hid one model behind the other
    residuals by band   box per model and true-RUL band, at the cut points (the gates' rows)
    trajectories        the worst assets at the cut points (not the first ones), the cut
                        window shaded, intervals as bands
    calibration         nominal vs empirical interval coverage, over all rows

matplotlib (Agg) like the rest of the platform's reports; imported inside the functions.
"""

from __future__ import annotations

import base64
import html
import io

import numpy as np

from pipelines import review_compare as C
from pipelines.evidence import Evidence, ModelEvidence

COLOURS = ("#1f77b4", "#ff7f0e")  # candidate, champion


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig, alt: str = "plot") -> str:
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def figure(fig, caption: str) -> str:
    return (f"<figure>{_png(fig, caption)}<figcaption>{html.escape(caption)}</figcaption>"
            "</figure>")


def models(ev: Evidence) -> list[tuple[str, ModelEvidence]]:
    pairs = [(f"candidate v{ev.candidate.version}", ev.candidate)]
    if ev.champion is not None:
        pairs.append((f"champion v{ev.champion.version}", ev.champion))
    return pairs


def predicted_vs_true(ev: Evidence) -> str:
    plt = _plt()
    pairs = models(ev)
    top = max(float(np.nanmax(m.predictions[["true_rul", "rul"]].to_numpy())) for _, m in pairs)
    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 4.4), squeeze=False,
                             sharey=True)
    from matplotlib.colors import LogNorm

    cells = []
    for ax, (label, m) in zip(axes[0], pairs, strict=True):
        p = m.predictions
        cells.append(ax.hexbin(p["true_rul"], p["rul"], gridsize=35, norm=LogNorm(), mincnt=1,
                               extent=(0, top, 0, top), cmap="viridis"))
        ax.plot([0, top], [0, top], "r--", lw=1, label="perfect")
        ax.set(title=f"{label} ({len(p)} rows)", xlabel="true RUL (uncapped)",
               ylabel="predicted RUL")
        ax.legend(loc="upper left", fontsize=8)
    most = max(float(c.get_array().max()) for c in cells)
    for c in cells:  # one colour scale for both panels, so one colour bar reads for both
        c.set_clim(1, most)
    fig.colorbar(cells[-1], ax=axes[0].tolist(), label="rows per cell (log scale)")
    return figure(fig, "Predicted vs true RUL over all evaluation rows, as a density (rows per "
                       "hexagon). Closer to the dashed diagonal is better; above it = predicts "
                       "failure late. A capped model flattens at its cap on purpose.")


def residuals_by_band(ev: Evidence) -> str:
    plt = _plt()
    pairs, edges = models(ev), C.bands(ev)
    fig, ax = plt.subplots(figsize=(9, 4))
    width = 0.8 / len(pairs)
    for j, (label, m) in enumerate(pairs):
        c = C.cut_rows(m)
        data = [c.err[(c.true_rul >= lo) & (c.true_rul < hi)].to_numpy() for lo, hi in edges]
        pos = [i + (j - (len(pairs) - 1) / 2) * width for i in range(len(edges))]
        keep = [k for k, d in enumerate(data) if len(d)]
        box = ax.boxplot([data[k] for k in keep], positions=[pos[k] for k in keep],
                         widths=width * 0.9, whis=(5, 95), showfliers=False,
                         patch_artist=True)
        for patch in box["boxes"]:
            patch.set(facecolor=COLOURS[j], alpha=0.6)
        ax.plot([], [], "s", color=COLOURS[j], alpha=0.6, label=label)
    ax.axhline(0, color="k", lw=1)
    ax.set_xticks(range(len(edges)), [f"true RUL {C.band_label(lo, hi)}" for lo, hi in edges])
    ax.set(ylabel="predicted - true RUL", title="Residuals at the cut points by true-RUL band")
    ax.legend(fontsize=8)
    return figure(fig, "Residual (predicted - true, uncapped) at the cut points the gates score, "
                       "per true-RUL band: box = middle half, whiskers = 5-95%. Closer to 0 is "
                       "better; above 0 = predicts failure late (PHM08 penalises that more).")


def worst_trajectories(ev: Evidence, n: int = 4) -> str:
    plt = _plt()
    table = C.asset_table(ev)
    units = list(table.index[:n])
    fig, axes = plt.subplots(1, len(units), figsize=(4 * len(units), 3.4), squeeze=False)
    for ax, unit in zip(axes[0], units, strict=True):
        for j, (label, m) in enumerate(models(ev)):
            p = m.predictions[m.predictions["asset_id"].astype(str) == unit]
            ax.plot(p["cycle"], p["rul"], color=COLOURS[j], label=label)
            ax.fill_between(p["cycle"], p["rul_lower"], p["rul_upper"], color=COLOURS[j],
                            alpha=0.15)
        p = ev.candidate.predictions[ev.candidate.predictions["asset_id"].astype(str) == unit]
        cut = p.loc[p["cut_weight"] > 0, "cycle"]
        if len(cut):
            ax.axvspan(cut.min(), cut.max(), color="0.85", zorder=0, label="cut window")
        ax.plot(p["cycle"], p["true_rul"], "k--", lw=1, label="true RUL")
        row = table.loc[unit]
        champ = f" (champion {row['champ_rmse']:.1f})" if "champ_rmse" in row else ""
        ax.set_title(f"{unit}\ncut RMSE {row['rmse']:.1f}{champ}", fontsize=9)
        ax.set(xlabel="cycle", ylabel="RUL")
    axes[0][0].legend(fontsize=7)
    return figure(fig, f"The {len(units)} worst assets by the candidate's RMSE at the cut points "
                       "(grey: the share of life the cuts are drawn from): predicted RUL with "
                       "its interval band against the true RUL (dashed). Closer to the dashed "
                       "line is better.")


def calibration(ev: Evidence) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4.5))
    for j, (label, m) in enumerate(models(ev)):
        levels = sorted(m.calibration)
        ax.plot(levels, [m.calibration[lv] for lv in levels], ("o-", "s--")[j],
                color=COLOURS[j], label=label, alpha=0.8)
    ax.plot([0.4, 1], [0.4, 1], "k--", lw=1, label="perfectly calibrated")
    ax.set(xlabel="nominal interval level", ylabel="empirical coverage",
           title="Interval calibration, all evaluation rows")
    ax.legend(fontsize=8)
    return figure(fig, "Interval calibration over ALL evaluation rows (not only the cut points): "
                       "the share of true RULs inside the interval at each nominal level. "
                       "Closer to the diagonal is better; below it = intervals too narrow.")
