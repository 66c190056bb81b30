"""report.html: per entity type out-of-fold metrics, calibration, importance, SHAP summary,
grade distribution, ring summary, data and model versions. Plots are embedded PNGs."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from riskgraph.settings import Settings
from scoring.disclosure import withheld
from scoring.grades import bands_text

TOP_FEATURES = 15
SUMMARY_POINTS = 1500


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _calibration_plot(calibration: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(4, 4))
    pred = [c["predicted"] for c in calibration]
    obs = [c["observed"] for c in calibration]
    top = max(pred + obs + [0.01])
    ax.plot([0, top], [0, top], "--", color="grey", lw=1)
    ax.plot(pred, obs, "o-")
    ax.set_xlabel("mean predicted (out-of-fold)")
    ax.set_ylabel("observed rate")
    ax.set_title("Calibration")
    return _png(fig)


def _importance_plot(importance: pd.Series) -> str:
    imp = importance.head(TOP_FEATURES)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(imp) + 1))
    ax.barh(imp.index, imp.to_numpy())
    ax.set_title("Feature importance (total gain)")
    return _png(fig)


def _shap_summary_plot(contrib: pd.DataFrame, X: pd.DataFrame) -> str:
    """Beeswarm-style summary: each dot an explained entity, colour its feature value rank."""
    order = contrib.abs().mean().sort_values(ascending=False).index[:TOP_FEATURES][::-1]
    rng = np.random.default_rng(0)
    if len(contrib) > SUMMARY_POINTS:  # a sample draws the same picture far faster
        keep = np.sort(rng.choice(len(contrib), SUMMARY_POINTS, replace=False))
        contrib, X = contrib.iloc[keep], X.iloc[keep]
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1))
    for i, f in enumerate(order):
        c = contrib[f].to_numpy()
        v = pd.to_numeric(X[f], errors="coerce") if f in X else pd.Series(np.nan, index=X.index)
        colour = v.rank(pct=True).fillna(0.5).to_numpy()
        ax.scatter(c, i + rng.uniform(-0.25, 0.25, len(c)), c=colour, cmap="coolwarm", s=6, alpha=0.7, rasterized=True)
    ax.set_yticks(range(len(order)), order)
    ax.axvline(0, color="grey", lw=1)
    ax.set_xlabel("contribution to log-odds (SHAP, top explained entities)")
    ax.set_title("SHAP summary (blue = low value, red = high)")
    return _png(fig)


def _grade_table(scores: pd.DataFrame) -> str:
    counts = scores.groupby(["entity_type", "grade"]).size().unstack(fill_value=0)
    return str(counts.reindex(columns=["A", "B", "C", "D"], fill_value=0).to_html())


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.3f}" if isinstance(v, float) else html.escape(str(v))


def _fairness_section(fairness: pd.DataFrame | None) -> str:
    head = "<h2>Fairness: grades by gender and age band</h2>"
    if fairness is None or fairness.empty:
        return head + "<p>The persons table has no gender or birth dates: nothing to compare.</p>"
    flagged = fairness[fairness["flag"] != ""]
    note = (
        f"<p><strong>{len(flagged)} group(s) below the four-fifths rule.</strong></p>"
        if len(flagged)
        else "<p>No group below the four-fifths rule.</p>"
    )
    return (
        head + "<p>Favourable outcome: grade A or B. Disparate impact: a group's favourable share over the "
        "best-treated group's (groups of at least 20 persons); below 0.8 is flagged. Gender, age and "
        "health columns are not model features unless a setting opts them in.</p>"
        + note
        + fairness.to_html(index=False, float_format=lambda v: f"{v:.2f}", na_rep="n/a")
    )


MONITORED_FEATURES = 12  # the most drifted features listed per type


def _psi_cell(v: Any) -> str:
    if v is None:
        return "<td>n/a</td>"
    colour = "#f8d0d0" if v >= 0.25 else "#fff0c0" if v >= 0.1 else "#ffffff"
    return f"<td style='background:{colour}'>{v:.3f}</td>"


def monitoring_section(monitoring: dict[str, Any] | None) -> str:
    """Drift: score and feature PSI against the previous run and the training population, grade
    migration, rule hit-rate changes (out/monitoring.json has every feature)."""
    head = "<h2>Monitoring: drift and stability</h2>"
    if not monitoring:
        return head + "<p>No monitoring for this run.</p>"
    prev = monitoring.get("previous_run_id")
    parts = [
        head,
        "<p>Population stability index (PSI) on the reference's decile bins: below 0.1 stable, "
        "0.1 to 0.25 watch, 0.25 or more alert. "
        + (f"Previous run: <code>{html.escape(prev)}</code>." if prev else "No previous run to compare with.")
        + f" {len(monitoring.get('alerts', []))} PSI at or over 0.25.</p>",
    ]
    for t, m in monitoring.get("types", {}).items():
        parts.append(f"<h3>{html.escape(t)} &middot; reference: {html.escape(m['reference'])}</h3>")
        rows = [("score", m["score_psi"]["previous"], m["score_psi"]["reference"])]
        rows += [(f["feature"], f["psi_previous"], f["psi_reference"]) for f in m["features"][:MONITORED_FEATURES]]
        parts.append(
            "<table><tr><th>column</th><th>PSI vs previous run</th><th>PSI vs training</th></tr>"
            + "".join(f"<tr><td>{html.escape(n)}</td>{_psi_cell(a)}{_psi_cell(b)}</tr>" for n, a, b in rows)
            + "</table>"
        )
        migration = m.get("grade_migration")
        if migration:
            cols = sorted({c for r in migration.values() for c in r}, key=lambda c: "ABCDgone".find(c))
            parts.append(
                "<p>Grade migration (rows: previous run, columns: this run)</p><table><tr><th></th>"
                + "".join(f"<th>{html.escape(c)}</th>" for c in cols)
                + "</tr>"
                + "".join(
                    f"<tr><th>{html.escape(r)}</th>" + "".join(f"<td>{row.get(c, 0)}</td>" for c in cols) + "</tr>"
                    for r, row in migration.items()
                )
                + "</table>"
            )
    changes = [r for r in (monitoring.get("rule_hit_rates") or []) if r["change"] != 0][:MONITORED_FEATURES]
    if changes:
        parts.append(
            "<h3>Rule hit-rate changes</h3><table><tr><th>rule</th><th>type</th><th>before</th><th>now</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(r['rule_id'])}</td><td>{html.escape(str(r['entity_type']))}</td>"
                f"<td>{r['rate_before']:.2%}</td><td>{r['rate_now']:.2%}</td></tr>"
                for r in changes
            )
            + "</table>"
        )
    return "".join(parts)


def _metric_row(name: str, met: dict[str, Any] | None) -> str:
    if not met:
        return f"<tr><th>{html.escape(name)}</th><td colspan='6'>not measured</td></tr>"
    hidden = withheld(met) if met.get("roc_auc") is not None else met.get("note")
    if hidden:
        return (
            f"<tr><th>{html.escape(name)}</th><td>{met.get('n', 'n/a')}</td><td>{met.get('positives', 'n/a')}</td>"
            f"<td colspan='4'>{html.escape(str(hidden))}</td></tr>"
        )
    return (
        f"<tr><th>{html.escape(name)}</th><td>{met.get('n')}</td><td>{met.get('positives')}</td>"
        f"<td>{_fmt(met.get('roc_auc'))}</td><td>{_fmt(met.get('pr_auc'))}</td><td>{_fmt(met.get('ks'))}</td>"
        f"<td>{_fmt(met.get('brier'))}</td></tr>"
    )


def _validation_table(met: dict[str, Any], baseline: dict[str, Any] | None) -> str:
    """Random-fold, out-of-time and attribute-baseline metrics side by side."""
    oot = met.get("oot") if isinstance(met.get("oot"), dict) else None
    oot_name = "out of time"
    if oot and oot.get("cut"):
        oot_name = f"out of time (labels after {oot['cut']})"
    rows = [
        _metric_row("random folds (out-of-fold)", met),
        _metric_row(oot_name, oot),
        _metric_row("attribute-only baseline (out-of-fold)", baseline),
    ]
    notes = "<p>Random folds: each labelled entity is scored by a model that never saw its label. "
    if oot and oot.get("cut"):
        notes += (
            f"Out of time: a model trained on the labels known up to {html.escape(oot['cut'])} "
            f"({oot.get('train_n', 'n/a')} labels, {oot.get('undated', 0)} of them without an as_of date and "
            "counted as known before the cut), measured on the labels dated after it. "
        )
    elif oot:
        notes += f"Out of time: {html.escape(str(oot.get('note', 'not measured')))}. "
    notes += "Baseline: the same LightGBM and folds on the entity table's own columns only (no graph).</p>"
    return (
        "<table><tr><th></th><th>labelled</th><th>positives</th><th>ROC-AUC</th><th>PR-AUC</th><th>KS</th>"
        "<th>Brier</th></tr>" + "".join(rows) + "</table>" + notes
    )


def _model_plots(m: Any) -> str:
    met = m.metrics or {}
    plots = []
    if met.get("calibration") and not withheld(met):
        plots.append(
            "<figure><figcaption>Calibration (out-of-fold)</figcaption>"
            + _calibration_plot(met["calibration"])
            + "</figure>"
        )
    if m.importance is not None and len(m.importance):
        plots.append(
            "<figure><figcaption>Feature importance</figcaption>" + _importance_plot(m.importance) + "</figure>"
        )
    if m.contributions is not None and len(m.contributions):
        plots.append(
            "<figure><figcaption>SHAP summary</figcaption>"
            + _shap_summary_plot(m.contributions, m.explained_X)
            + "</figure>"
        )
    return "<div class='plots'>" + "".join(plots) + "</div>"


def model_plots(models: dict[str, Any]) -> dict[str, str]:
    """Each scored type's figures as HTML (the report's slowest part: the composer draws them on
    the second core as soon as the models are scored, while the explanations are built)."""
    return {t: _model_plots(m) for t, m in models.items() if m.kind != "empty"}


def write_report(
    path: Path,
    *,
    scores: pd.DataFrame,
    models: dict[str, Any],
    rings: pd.DataFrame,
    manifest: dict[str, Any],
    settings: Settings,
    fairness: pd.DataFrame | None = None,
    monitoring: dict[str, Any] | None = None,
    baselines: dict[str, dict[str, Any] | None] | None = None,
    plots: dict[str, str] | None = None,
) -> None:
    """report.html; `plots` are `model_plots(models)` when drawn beforehand (else drawn here)."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>RiskGraph model report</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "h2{border-bottom:2px solid #246;margin-top:2em}.plots figure{display:inline-block;margin:6px;vertical-align:top}</style></head><body>",
        "<h1>RiskGraph model report</h1>",
        f"<p>Version {html.escape(manifest['riskgraph_version'])} &middot; input hash "
        f"<code>{html.escape(manifest['input_hash'])}</code> &middot; store "
        f"<code>{html.escape(manifest['store'])}</code> &middot; loaded {html.escape(manifest['snapshot_loaded_at'])}</p>",
        f"<p>Grade bands: {html.escape(bands_text(settings.bands))}; scorecard "
        f"{settings.scorecard.base_points:g} points at {settings.scorecard.base_odds:g}:1 good:bad odds, "
        f"{settings.scorecard.pdo:g} points to double the odds.</p>",
        "<h2>Grade distribution</h2>",
        _grade_table(scores),
        _fairness_section(fairness),
    ]
    for t, m in models.items():
        parts.append(
            f"<h2>{html.escape(t)}: {html.escape(m.kind)} &middot; model {html.escape(m.model_version or 'none')}</h2>"
        )
        if m.kind == "empty":
            parts.append("<p>No entities of this type in the dataset.</p>")
            continue
        met = m.metrics
        hidden = withheld(met) if met else None
        if hidden:
            parts.append(
                f"<p><strong>{html.escape(hidden.capitalize())}.</strong> ROC-AUC, PR-AUC and KS on so few "
                "labels say nothing about how well the model separates fraud from clean cases.</p>"
            )
            met = {}
        elif met:
            parts.append(_validation_table(met, (baselines or {}).get(t)))
            if met.get("note"):
                parts.append(f"<p>{html.escape(met['note'])}</p>")
        else:
            parts.append(
                "<p>Too few labels to train or to measure: scored by the documented unsupervised "
                "method (rule severities, ring membership, anomaly rank).</p>"
            )
        parts.append(plots[t] if plots is not None and t in plots else _model_plots(m))
    parts.append(monitoring_section(monitoring))
    parts.append("<h2>Rings</h2>")
    if len(rings):
        summary = rings.groupby("ring_type").agg(rings=("ring_id", "size"), mean_score=("ring_score", "mean"))
        parts.append(summary.to_html(float_format="%.3f"))
        cols = [c for c in ("ring_id", "ring_type", "ring_score", "size", "money_at_stake", "why") if c in rings]
        parts.append(
            "<h3>Top rings</h3>"
            + rings.sort_values("ring_score", ascending=False).head(20)[cols].to_html(index=False, float_format="%.3f")
        )
    else:
        parts.append("<p>No rings detected.</p>")
    if manifest.get("skipped"):
        parts.append(
            "<h2>Skipped</h2><ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in manifest["skipped"]) + "</ul>"
        )
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
