"""The review report: one self-contained HTML page a reviewer can judge a promotion on.

    Evidence + GateResult ─► render_html ─► review-v<N>.html (plots inlined as PNG data URIs,
                         │                  so the file opens anywhere and in the MLflow UI's
                         │                  artifact viewer)
                         └─► version_description ─► Markdown for the MLflow model-version
                                                     page: headline, gates, key figures, link

Top to bottom: one headline sentence (pipelines.review_compare.headline: what changed and
whether to approve) and any physics flags; the gates; the scoring the gates read (the cut
points), candidate vs champion with which way is better; what changed (the two training
configurations, differences first, and both lineages with the data change since the
champion); the error per asset, worst first; the error and residuals per true-RUL band;
the worst assets' trajectories, predicted vs true as a density, calibration
(pipelines.review_plots); the all-rows figures, labelled as not what the gates read; the
physics checks; global sensor importance (serving.explain).
"""

from __future__ import annotations

import html
import math
from datetime import UTC, datetime

from pipelines import review_compare as C
from pipelines import review_plots as P
from pipelines.evidence import Evidence
from pipelines.gates import GateResult
from pipelines.review_plots import _png  # noqa: F401 (pipelines.fleet_report reuses it)

LINEAGE_TAGS = [
    ("DVC data hash (training)", "dvc_data_hash"),
    ("Feast feature service", "feature_service"),
    ("git commit", "git_commit"),
    ("artifact SHA-256", "artifact_sha256"),
    ("trained_by tag", "trained_by"),
    ("triggering drift report", "trigger.report_uri"),
    ("retrain reasons", "trigger.reasons"),
    ("triggering monitor run", "trigger.monitor_run"),
]
#: (metric key, what it is, which way is better) of the scoring the gates read.
CUT_METRICS = [
    ("cut_rmse", "RMSE (RUL units)", "lower"),
    ("cut_phm08_per_unit", "PHM08 score per unit", "lower"),
    ("cut_mae", "MAE (RUL units)", "lower"),
    ("cut_coverage", "interval coverage", "in the gate's range, near nominal"),
    ("cut_width", "interval width (RUL units)", "lower at equal coverage"),
    ("cut_units_missed", "share of units whose interval misses most cuts", "lower"),
    ("cut_n_units", "units scored", "count"),
]
ALL_ROW_METRICS = [
    ("rmse", "RMSE against the capped target", "lower"),
    ("mae", "MAE against the capped target", "lower"),
    ("phm08_score", "PHM08 score summed over every row (capped target; grows with the rows)",
     "lower"),
    ("coverage", "interval coverage over all rows (uncapped truth)", "near nominal"),
    ("width", "interval width over all rows", "lower at equal coverage"),
    ("last_rmse", "RMSE at each unit's last cycle", "lower"),
    ("last_phm08_score", "PHM08 summed at each unit's last cycle", "lower"),
    ("brier", "Brier score of p_fail at the horizon", "lower"),
    ("physics_time_residual", "time-consistency residual (RUL units)", "lower"),
    ("n_rows", "evaluation rows", "count"),
]
#: A model whose health never reaches this on run-to-failure units that start new never
#: calls a unit healthy (issue #19: 0.821 passed silently); its minimum should reach
#: 1 - this near failure. Flags, not gates.
HEALTH_NEAR_BOUND = 0.9
#: Per-asset rows shown before the rest is folded away.
ASSET_ROWS = 10
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1150px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child,td.t{text-align:left}td:first-child{white-space:nowrap}
table{max-width:100%}td{overflow-wrap:anywhere}
.pass{color:#0a7d28;font-weight:600}.fail{color:#b00020;font-weight:600}img{max-width:100%}
.warn{color:#a15c00;font-weight:600}tr.diff td{background:#fff3cd}
.note{background:#fff8e1;padding:.5rem 1rem;border-left:4px solid #f0b400}
.headline{font-size:1.25rem;padding:.7rem 1rem;border-left:6px solid #888;background:#f7f7f7}
.headline.pass{border-color:#0a7d28;color:#222;font-weight:500}
.headline.fail{border-color:#b00020;color:#222;font-weight:500}
figure{margin:1rem 0 2rem}figcaption{color:#555;font-size:.9rem;max-width:900px}
caption{text-align:left;color:#555;font-size:.9rem;padding-bottom:.3rem}
"""


def _cell(v, first: bool = False) -> str:
    """A table cell; (value, css class) tuples are coloured. Integers print as integers;
    words (a detail, a reason) read left-aligned, numbers and codes right-aligned."""
    cls = ""
    if isinstance(v, tuple):
        v, cls = v
    if isinstance(v, float) and math.isfinite(v):
        text = f"{v:.3f}"
    elif isinstance(v, float):
        text = "—"
    else:
        text = html.escape(str(v))
        if not (first or cls) and " " in text:
            cls = "t"
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def _table(header: list[str], rows: list[list], caption: str = "",
           row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    classes = row_classes or [""] * len(rows)
    body = "".join((f'<tr class="{c}">' if c else "<tr>")
                   + "".join(_cell(v, i == 0) for i, v in enumerate(r)) + "</tr>"
                   for r, c in zip(rows, classes, strict=True))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{cap}<tr>{head}</tr>{body}</table>"


def _fmt(v, better: str):
    if better == "count" and isinstance(v, int | float) and math.isfinite(v):
        return int(round(v))
    return v


def _delta(cand: float, champ: float, better: str):
    """The candidate's relative change, coloured where a direction is defined."""
    if better != "lower" or not (math.isfinite(cand) and math.isfinite(champ)) or champ == 0:
        return "—"
    rel = cand / champ - 1
    cls = "fail" if rel > C.SAME else "pass" if rel < -C.SAME else ""
    return (f"{rel:+.0%}", cls)


def _metric_table(ev: Evidence, spec: list[tuple[str, str, str]], caption: str) -> str:
    pairs = P.models(ev)
    keys = list(spec)
    if spec is CUT_METRICS:  # the coverage per band follows the target cap: read it off
        bands = sorted({k for _, m in pairs for k in m.metrics if k.startswith("cut_coverage_")},
                       key=lambda k: float(k.removeprefix("cut_coverage_").split("-")[0]))
        keys[4:4] = [(k, f"coverage, true RUL {k.removeprefix('cut_coverage_')}",
                      "near nominal") for k in bands]
    rows = []
    for key, label, better in keys:
        values = [m.metrics.get(key, float("nan")) for _, m in pairs]
        if all(isinstance(v, float) and math.isnan(v) for v in values):
            continue
        row = [f"{label} [{key}]", better + (" is better" if better == "lower" else ""),
               *[_fmt(v, better) for v in values]]
        if ev.champion is not None:
            row.append(_delta(values[0], values[1], better))
        rows.append(row)
    header = ["figure", "better", *[label for label, _ in pairs]]
    return _table(header + (["candidate vs champion"] if ev.champion else []), rows, caption)


def _physics(ev: Evidence) -> tuple[str, list[str]]:
    """The physics table and the flags it raised (health never near 1 or never near 0)."""
    pairs = P.models(ev)
    expected = {"min_rul": "≥ 0 (gate)", "damage_reversal_share": "lower (gate)",
                "time_consistency_residual": "lower, RUL units (gate)",
                "min_health": f"≥ 0 (gate); ≤ {1 - HEALTH_NEAR_BOUND:.1f} near failure",
                "max_health": f"≤ 1 (gate); ≥ {HEALTH_NEAR_BOUND} when new"}
    flags, rows = [], []
    for key in ev.candidate.physics:
        cells = []
        for label, m in pairs:
            v = m.physics.get(key, float("nan"))
            low = key == "max_health" and v < HEALTH_NEAR_BOUND
            high = key == "min_health" and v > 1 - HEALTH_NEAR_BOUND
            if low or high:
                flags.append(f"{label}: {key} {v:.3f} is {'below' if low else 'above'} "
                             f"{HEALTH_NEAR_BOUND if low else round(1 - HEALTH_NEAR_BOUND, 3)}: "
                             f"it never calls a unit {'healthy' if low else 'worn out'} "
                             "(no gate checks this)")
                cells.append((f"{v:.3f} ⚠", "warn"))
            else:
                cells.append(v)
        rows.append([key, expected.get(key, ""), *cells])
    table = _table(["check", "expected", *[label for label, _ in pairs]], rows,
                   "The served model (every member) on the evaluation trajectories.")
    return table, flags


def _config(ev: Evidence) -> str:
    rows = C.config_rows(ev)
    n = sum(r[3] for r in rows)
    pairs = P.models(ev)
    body = [[k, a, *([b] if ev.champion else [])] for k, a, b, _ in rows]
    caption = (f"{n} setting(s) differ (highlighted, first)." if ev.champion
               else "No champion to compare with.") + " Run params, then what the fit logged."
    return _table(["setting", *[label for label, _ in pairs]], body, caption,
                  ["diff" if d else "" for *_, d in rows])


def _lineage(ev: Evidence, run_uri: str) -> str:
    pairs = P.models(ev)
    rows = [[label, *[m.tags.get(key, "—") for _, m in pairs]] for label, key in LINEAGE_TAGS]
    rows += [["MLflow run", *[m.run_id for _, m in pairs]],
             ["trainer (the run's server-recorded user)", *[m.run_user or "—" for _, m in pairs]],
             ["run-to-failure units trained on", *[len(m.trained_units) or "—" for _, m in pairs]]]
    # a run and its artifact always differ from the champion's: not a change to point at
    always = {"MLflow run", "artifact SHA-256"}
    cls = ["diff" if ev.champion and r[1] != r[2] and r[0] not in always else "" for r in rows]
    return (f"<p><b>Data change since the champion:</b> {html.escape(C.data_change(ev))}.</p>"
            + _table(["", *[label for label, _ in pairs]], rows,
                     "Highlighted: differs between the two." if ev.champion else "", cls)
            + _table(["evaluation", "value"],
                     [["candidate run URI", run_uri or "—"],
                      ["evaluation data (DVC)", ev.data_hash or "untracked"],
                      ["evaluation units", ", ".join(ev.units)]]))


def _assets(ev: Evidence) -> str:
    t = C.asset_table(ev)
    champ = ev.champion is not None
    rows = []
    for unit, r in t.iterrows():
        row = [unit, int(r["cuts"]), r["rmse"]]
        if champ:
            row += [r["champ_rmse"], _delta(r["rmse"], r["champ_rmse"], "lower")]
        row += [r["bias"], *([r["champ_bias"]] if champ else []), r["phm08"],
                *([r["champ_phm08"]] if champ else [])]
        rows.append(row)
    header = ["asset", "cut rows", "RMSE candidate", *(["RMSE champion", "RMSE change"]
                                                       if champ else []),
              "bias candidate", *(["bias champion"] if champ else []), "PHM08 candidate",
              *(["PHM08 champion"] if champ else [])]
    caption = ("Per evaluation asset at its cut points, worst candidate RMSE first. RMSE and "
               "PHM08: lower is better; bias = mean(predicted - true): 0 is best, > 0 = "
               "predicts failure late.")
    table = _table(header, rows[:ASSET_ROWS], caption)
    if len(rows) > ASSET_ROWS:
        table += (f"<details><summary>the other {len(rows) - ASSET_ROWS} assets</summary>"
                  f"{_table(header, rows[ASSET_ROWS:])}</details>")
    return table


def _bands(ev: Evidence) -> str:
    pairs, edges = P.models(ev), C.bands(ev)
    frames = [C.band_errors(m, edges) for _, m in pairs]
    rows = [[f"true RUL {b}", int(frames[0].loc[b, "rows"]),
             *[f.loc[b, "rmse"] for f in frames], *[f.loc[b, "bias"] for f in frames]]
            for b in frames[0].index]
    header = ["band", "cut rows", *[f"RMSE {label}" for label, _ in pairs],
              *[f"bias {label}" for label, _ in pairs]]
    cut = _table(header, rows, "At the cut points, against the uncapped truth. RMSE: lower is "
                               "better; bias: 0 is best, > 0 = predicts failure late.")
    all_rows = sorted({b for _, m in pairs for b in m.rmse_by_band},
                      key=lambda b: float(b.split("-")[0]))
    old = _table(["band", *[label for label, _ in pairs]],
                 [[f"true RUL {b}", *[m.rmse_by_band.get(b, float("nan")) for _, m in pairs]]
                  for b in all_rows],
                 "RMSE over ALL rows against the capped target (not what the gates read); "
                 "lower is better.")
    return (cut + P.residuals_by_band(ev) + "<details><summary>RMSE by band over all rows "
            f"(capped target)</summary>{old}</details>")


def render_html(ev: Evidence, gates: GateResult, *, model_name: str, run_uri: str = "") -> str:
    physics, flags = _physics(ev)
    verdict = ('<span class="pass">gates passed — awaiting a reviewer</span>' if gates.passed
               else f'<span class="fail">gates failed: {html.escape("; ".join(gates.failures))}'
                    "</span>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in [*ev.notes, *flags])
    gate_table = _table(["gate", "result", "detail"],
                        [[c.name, ("PASS", "pass") if c.passed else ("FAIL", "fail"), c.detail]
                         for c in gates.checks])
    title = f"Review: {html.escape(model_name)} v{ev.candidate.version}"
    level = ev.candidate.params.get("interval_level", "")
    return f"""<!doctype html><html><head><meta charset="utf-8">
<title>{title}</title><style>{_CSS}</style></head><body><h1>{title}</h1>
<p class="headline {'pass' if gates.passed else 'fail'}">{html.escape(C.headline(ev, gates))}</p>
<p>Generated {datetime.now(UTC).isoformat(timespec="seconds")}. Verdict: {verdict}</p>{notes}
<h2>Gates</h2>{gate_table}
<h2>Scoring at the cut points (what the gates read)</h2>
<p>Each evaluation unit scored at random cuts of 30–95% of its life against its true
(uncapped) RUL, every unit weighted equally, as a unit in service is judged; predicted out
of fold by both models on the same pinned units. Nominal interval level {html.escape(level)}.</p>
{_metric_table(ev, CUT_METRICS, "The gates compare RMSE and PHM08 per unit here.")}
<h2>What changed: training configuration</h2>{_config(ev)}
<h2>What changed: lineage</h2>{_lineage(ev, run_uri)}
<h2>Error per asset at the cut points</h2>{_assets(ev)}
{P.worst_trajectories(ev)}
<h2>Error by true-RUL band at the cut points</h2>{_bands(ev)}
<h2>Predicted vs true and calibration</h2>{P.predicted_vs_true(ev)}{P.calibration(ev)}
<h2>All evaluation rows (not what the gates read)</h2>
{_metric_table(ev, ALL_ROW_METRICS, "Every row weighted alike: long lives and the easy "
               "plateau count more; shown for comparison with older reports.")}
<h2>Physics checks</h2>{physics}
{_importance(ev)}
</body></html>"""


def version_description(ev: Evidence, gates: GateResult, report_uri: str) -> str:
    """Markdown for the MLflow model-version description: the headline, the gate outcome,
    the key figures side by side and where the report is, so a reviewer on the version page
    needs one click to the evidence."""
    rmse, score, cut = C.scoring_keys(ev)
    where = "at the cut points" if cut else "over all rows"
    pairs = P.models(ev)

    def num(v) -> str:
        return f"{v:.3f}" if isinstance(v, float) and math.isfinite(v) else "—"

    rows = [(f"RMSE {where} (lower is better)", rmse),
            (f"PHM08 {'per unit ' if cut else ''}{where} (lower is better)", score),
            (f"interval coverage {where}", "cut_coverage" if cut else "coverage")]
    lines = [f"**{C.headline(ev, gates)}**", "",
             f"Gates: **{'PASS' if gates.passed else 'FAIL'}**"
             + ("" if gates.passed else " — " + "; ".join(gates.failures)), "",
             "| | " + " | ".join(label for label, _ in pairs) + " |",
             "|---|" + "---|" * len(pairs)]
    lines += [f"| {label} | " + " | ".join(num(m.metrics.get(key, float("nan")))
                                            for _, m in pairs) + " |" for label, key in rows]
    lines += ["", f"Data: {C.data_change(ev)}.", "", f"Review report: {report_uri}"]
    return "\n".join(lines)


def _importance(ev: Evidence, top: int = 12) -> str:
    """The candidate's `top` channels by mean |contribution|, the champion's alongside."""
    from pipelines.evidence import IMPORTANCE_ROWS

    models = [(label, m) for label, m in P.models(ev) if m.sensor_importance]
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
