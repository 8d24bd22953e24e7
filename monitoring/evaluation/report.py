"""The evaluation report: figures as JSON (`evaluation.json`) and a small self-contained HTML page
(`evaluation.html`: PR curve, calibration, score histogram as PNGs embedded in base64; no script, no link)."""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monitoring.evaluation.metrics import finite

JSON_FILE = "evaluation.json"
HTML_FILE = "evaluation.html"
SCHEMA_VERSION = 1


@dataclass
class EvaluationReport:
    """What `evaluate_scored` measured. Figures are plain numbers (None where undefined)."""

    model: str
    version: int
    source: str
    rows: int
    frauds: int
    threshold: float
    alert_budget: float
    metrics: dict[str, float | None]  # pr_auc, roc_auc, precision/recall at threshold and budget, brier, ece
    at_threshold: dict[str, float | None]
    at_budget: dict[str, float | None]
    episodes: dict[str, float | None]  # episodes, detected, detection rate, frauds before the first alert
    calibration: list[dict[str, float]]  # reliability bins
    confidence_intervals: dict[str, list[float]] = field(default_factory=dict)  # name -> [low, high]
    bootstrap: dict[str, Any] = field(default_factory=dict)  # rounds, level, unit
    reconciliation: dict[str, Any] = field(default_factory=dict)  # rows_in, scored, quarantined
    data: dict[str, Any] = field(default_factory=dict)  # the input's fingerprint (`fingerprint.py`)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))

    def write_json(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    return finite(value)


# -- plots ---------------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plots(labels: np.ndarray, scores: np.ndarray, report: EvaluationReport) -> dict[str, str]:
    """PR curve, calibration and score histogram as base64 PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    out: dict[str, str] = {}
    fig, ax = plt.subplots(figsize=(5.5, 4))
    if 0 < labels.sum() < len(labels):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ax.plot(recall, precision, label=f"PR-AUC {report.metrics.get('pr_auc') or 0:.3f}")
    for name, point, colour in (
        ("threshold", report.at_threshold, "red"),
        ("budget", report.at_budget, "green"),
    ):
        if point.get("recall") is not None and point.get("precision") is not None:
            ax.scatter(
                [point["recall"]], [point["precision"]], color=colour, zorder=3, label=f"at the {name}"
            )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall")
    ax.legend(loc="upper right")
    out["pr_curve"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    bins = [b for b in report.calibration if b["rows"]]
    ax.plot([1e-6, 1], [1e-6, 1], color="grey", linestyle="--", label="perfectly calibrated")
    shown = [b for b in bins if b["fraud_rate"] > 0]
    ax.plot([b["mean_score"] for b in shown], [b["fraud_rate"] for b in shown], marker="o", label="model")
    ax.set(xscale="log", yscale="log", xlabel="mean score", ylabel="observed fraud rate", title="Calibration")
    ax.legend(loc="upper left")
    out["calibration"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.5, 4))
    edges = np.linspace(0, 1, 41)
    ax.hist(scores[labels == 0], bins=edges, alpha=0.6, label="genuine", log=True)
    ax.hist(scores[labels == 1], bins=edges, alpha=0.6, label="fraud", log=True)
    ax.axvline(report.threshold, color="red", linestyle="--", label="threshold")
    ax.set(xlabel="score", ylabel="rows (log)", title="Scores")
    ax.legend(loc="upper right")
    out["score_histogram"] = _png(fig)
    return out


def _figure(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def _interval(bounds: list[float] | None) -> str:
    return "" if not bounds else f"{_figure(bounds[0])} – {_figure(bounds[1])}"


def render_html(report: EvaluationReport, images: dict[str, str]) -> str:
    """The report page: headline table with intervals, episodes, reconciliation and the plots."""
    doc = report.to_dict()
    intervals = doc["confidence_intervals"]
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{_figure(value)}</td>"
        f"<td>{_interval(intervals.get(name))}</td></tr>"
        for name, value in {**doc["metrics"], **doc["episodes"]}.items()
    )
    facts = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{_figure(v)}</td></tr>"
        for k, v in {
            "model": f"{report.model} v{report.version}", "input": report.source, "rows": report.rows,
            "frauds": report.frauds, "threshold": report.threshold, "alert budget": report.alert_budget,
            **{f"input {k}": v for k, v in doc["reconciliation"].items() if not isinstance(v, dict)},
            **({"input sha256": doc["data"]["sha256"]} if doc["data"].get("sha256") else {}),
        }.items()
    )  # fmt: skip
    pictures = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></figure>'
        for name, data in images.items()
    )
    level = doc["bootstrap"].get("level", 0.95)
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Evaluation of {html.escape(report.model)} v{report.version}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child{text-align:left}"
        "figure{display:inline-block;margin:.5em}</style></head><body>"
        f"<h1>Evaluation of {html.escape(report.model)} v{report.version}</h1>"
        f"<table>{facts}</table>"
        f"<h2>Figures</h2><p>Intervals: {level:.0%} bootstrap over fraud episodes "
        f"({doc['bootstrap'].get('rounds', 0)} resamples).</p>"
        f"<table><tr><th>figure</th><th>value</th><th>interval</th></tr>{rows}</table>"
        f"<h2>Plots</h2>{pictures}</body></html>\n"
    )
