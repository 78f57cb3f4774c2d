"""The review report: one self-contained HTML page a reviewer can judge a promotion on.

    Evidence + GateResult + lineage tags ─► render_html ─► review-v<N>.html
                                                          (plots inlined as PNG data URIs,
                                                           so the file opens anywhere and in
                                                           the MLflow UI's artifact viewer)

Sections: verdict and gates, metrics side by side, error by true-RUL band,
plots (predicted vs true, per-asset trajectories with intervals, calibration),
physics checks, global sensor importance (serving.explain), data lineage (DVC hash,
feature service, git commit, MLflow run, who trained it and when, the drift report that
triggered it).
"""

from __future__ import annotations

import base64
import html
import io
from datetime import UTC, datetime

from pipelines.evidence import Evidence, ModelEvidence
from pipelines.gates import GateResult

LINEAGE_TAGS = [
    ("DVC data hash", "dvc_data_hash"),
    ("Feast feature service", "feature_service"),
    ("git commit", "git_commit"),
    ("artifact SHA-256", "artifact_sha256"),
    ("trained by", "trained_by"),
    ("triggering drift report", "trigger.report_uri"),
    ("retrain reasons", "trigger.reasons"),
    ("triggering monitor run", "trigger.monitor_run"),
]
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
.pass{color:#0a7d28;font-weight:600}.fail{color:#b00020;font-weight:600}img{max-width:100%}
.note{background:#fff8e1;padding:.5rem 1rem;border-left:4px solid #f0b400}
"""


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _models(ev: Evidence) -> list[tuple[str, ModelEvidence]]:
    pairs = [(f"candidate v{ev.candidate.version}", ev.candidate)]
    if ev.champion is not None:
        pairs.append((f"champion v{ev.champion.version}", ev.champion))
    return pairs


def _plots(ev: Evidence) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = _models(ev)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for label, m in models:
        p = m.predictions
        ax.scatter(p["true_rul"].clip(upper=150), p["rul"], s=6, alpha=0.5, label=label)
    ax.plot([0, 150], [0, 150], "k--", lw=1)
    ax.set(xlabel="true RUL (capped at 150 for display)", ylabel="predicted RUL",
           title="Predicted vs true RUL")
    ax.legend()
    scatter = _png(fig)

    units = ev.units[:4]
    fig, axes = plt.subplots(1, len(units), figsize=(4 * len(units), 3.4), squeeze=False)
    for ax, unit in zip(axes[0], units, strict=False):
        for label, m in models:
            p = m.predictions[m.predictions["asset_id"].astype(str) == unit]
            ax.plot(p["cycle"], p["rul"], label=label)
            ax.fill_between(p["cycle"], p["rul_lower"], p["rul_upper"], alpha=0.15)
        p = ev.candidate.predictions[ev.candidate.predictions["asset_id"].astype(str) == unit]
        ax.plot(p["cycle"], p["true_rul"], "k--", lw=1, label="true RUL")
        ax.set(title=unit, xlabel="cycle", ylabel="RUL")
    axes[0][0].legend(fontsize=7)
    trajectories = _png(fig)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    for label, m in models:
        levels = sorted(m.calibration)
        ax.plot(levels, [m.calibration[lv] for lv in levels], "o-", label=label)
    ax.plot([0.4, 1], [0.4, 1], "k--", lw=1)
    ax.set(xlabel="nominal interval level", ylabel="empirical coverage", title="Calibration")
    ax.legend()
    calibration = _png(fig)
    return (f"<h2>Plots</h2>{scatter}{calibration}<h3>Per-asset trajectories "
            f"(bands: intervals)</h3>{trajectories}")


def _importance(ev: Evidence, top: int = 12) -> str:
    """The candidate's `top` channels by mean |contribution|, the champion's alongside."""
    from pipelines.evidence import IMPORTANCE_ROWS

    models = [(label, m) for label, m in _models(ev) if m.sensor_importance]
    if not models:
        return ""
    ranked = list(models[0][1].sensor_importance)
    rows = [[channel, *[m.sensor_importance.get(channel, float("nan")) for _, m in models]]
            for channel in ranked[:top]]
    left_out = max(len(ranked) - top, 0)
    return ("<h2>Global sensor importance</h2><p>Mean |contribution| to the RUL (RUL units) "
            "per sensor, setting or age over a sample of at most "
            f"{IMPORTANCE_ROWS} evaluation rows: how far the channel typically moves a "
            "prediction away from the model's RUL for the average training state (integrated "
            "gradients, the channel's window features summed; docs/explanations.md). A large "
            "value says the model leans on the channel, not that the channel causes wear."
            f"{f' {left_out} channels with less are not shown.' if left_out else ''}</p>"
            f"{_table(['channel', *[label for label, _ in models]], rows)}")


def _table(header: list[str], rows: list[list]) -> str:
    def cell(v):
        return f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(ev: Evidence, gates: GateResult, *, model_name: str, run_uri: str = "") -> str:
    models = _models(ev)
    header = ["", *[label for label, _ in models]]
    # the bands follow the target cap (training.truncation.coverage_bands): read them off
    cut_bands = sorted({k for _, m in models for k in m.metrics if k.startswith("cut_coverage_")},
                       key=lambda k: float(k.removeprefix("cut_coverage_").split("-")[0]))
    metric_rows = [[k, *[m.metrics.get(k, float("nan")) for _, m in models]]
                   for k in ("cut_rmse", "cut_phm08_per_unit", "cut_coverage", "cut_width",
                             "cut_units_missed", *cut_bands,
                             "rmse", "phm08_score", "mae", "coverage", "width", "last_rmse",
                             "n_rows")]
    bands = sorted({b for _, m in models for b in m.rmse_by_band},
                   key=lambda b: float(b.split("-")[0]))
    band_rows = [[f"true RUL {b}", *[m.rmse_by_band.get(b, float("nan")) for _, m in models]]
                 for b in bands]
    physics_rows = [[k, *[m.physics[k] for _, m in models]] for k in ev.candidate.physics]
    gate_rows = [[c.name, "PASS" if c.passed else "FAIL", c.detail] for c in gates.checks]
    tags = ev.candidate.tags
    lineage_rows = [[label, tags.get(key, "—")] for label, key in LINEAGE_TAGS]
    lineage_rows += [["MLflow run", ev.candidate.run_id], ["run URI", run_uri or "—"],
                     ["evaluation data (DVC)", ev.data_hash or "untracked"],
                     ["evaluation units", ", ".join(ev.units)]]
    verdict = ('<span class="pass">gates passed — awaiting a reviewer</span>' if gates.passed
               else f'<span class="fail">gates failed: {html.escape("; ".join(gates.failures))}'
                    "</span>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in ev.notes)
    gate_table = _table(["gate", "result", "detail"], gate_rows).replace(
        "<td>PASS</td>", '<td class="pass">PASS</td>').replace(
        "<td>FAIL</td>", '<td class="fail">FAIL</td>')
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>Review: {html.escape(model_name)} v{ev.candidate.version}</title><style>{_CSS}</style></head>
<body><h1>Review: {html.escape(model_name)} v{ev.candidate.version}</h1>
<p>Generated {datetime.now(UTC).isoformat(timespec="seconds")}. Verdict: {verdict}</p>{notes}
<h2>Gates</h2>{gate_table}
<h2>Metrics on the same pinned units</h2>
<p class="note">cut_*: each unit scored at random cuts of 30-95% of its life against its true
(uncapped) RUL, every unit weighted equally, as a unit in service is judged: the figures the
gates read and training chose the model on. cut_phm08_per_unit: mean PHM08 score per unit.
cut_units_missed: share of units whose interval misses at most of their cuts. The rows below
them score every row against the capped target. Lower is better for rmse, score, mae, width.
</p>{_table(header, metric_rows)}
<h2>RMSE by true-RUL band</h2>{_table(header, band_rows)}
<h2>Physics checks (served model on the pinned trajectories)</h2>{_table(header, physics_rows)}
{_plots(ev)}
{_importance(ev)}
<h2>Data lineage</h2>{_table(["", "value"], lineage_rows)}
</body></html>"""
