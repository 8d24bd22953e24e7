"""Fraud evaluate (Processing step): the trained booster on the time-based test split.

Inputs: `OPT_ML/processing/input/model/model.tar.gz` (model.ubj + features.json from train.py) and
`OPT_ML/processing/input/test/` (every test row: the test split is never undersampled). Output in
`OPT_ML/processing/output/evaluation/`:

* `evaluation.json`: `{"metrics": {name: {"value": number}}}` with the gate's `pr_auc` and
  `pr_auc_lift_over_baseline` (PR-AUC over the test base rate, the PR-AUC of a random score), plus
  `roc_auc`, `recall_at_budget` / `precision_at_budget` (alerts on the top 0.5% of transactions by score),
  the alert threshold, base rate, Brier score and row counts;
* plots (PNG): PR curve, calibration, confusion at the alert threshold, feature importance (gain) and a
  SHAP summary (exact TreeSHAP from xgboost `pred_contribs` on a sample of at most 2,000 rows);
* `model_card.md`.

Only this file is shipped to the processing container: no sibling modules, no project code.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xgboost as xgb  # noqa: E402
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score  # noqa: E402

LABEL = "is_fraud"
ALERT_BUDGET = 0.005  # share of transactions the fraud team can review
SHAP_SAMPLE_ROWS = 2_000
SHAP_TOP_FEATURES = 15
IMPORTANCE_TOP_FEATURES = 20
SEED = 7
PLOTS = {
    "pr_curve": "pr_curve.png",
    "calibration": "calibration.png",
    "confusion": "confusion_at_alert_threshold.png",
    "feature_importance": "feature_importance.png",
    "shap_summary": "shap_summary.png",
}


class EvaluationError(ValueError):
    """The test split or the model cannot be evaluated (names the file or column, never a row value)."""


def opt_ml_root() -> Path:
    return Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))


# -- model and data ---------------------------------------------------------------------------------------


def load_model(model_dir: Path) -> tuple[xgb.Booster, dict[str, Any]]:
    """The booster and its features.json from a model folder (extracting model.tar.gz if it is there)."""
    archive = model_dir / "model.tar.gz"
    if archive.is_file():
        with tarfile.open(archive) as tar:
            tar.extractall(model_dir, filter="data")
    booster = xgb.Booster()
    booster.load_model(str(model_dir / "model.ubj"))
    document = json.loads((model_dir / "features.json").read_text())
    if list(booster.feature_names or []) != list(document["features"]):
        raise EvaluationError("the booster's feature names differ from features.json")
    return booster, document


def read_split(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise EvaluationError(f"no Parquet files in {folder.name}/")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def feature_matrix(frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise EvaluationError(f"test split lacks model features: {missing}")
    return frame[features].to_numpy(np.float32)


def predict(booster: xgb.Booster, frame: pd.DataFrame, features: list[str]) -> np.ndarray:
    """P(fraud) for every row."""
    data = xgb.DMatrix(feature_matrix(frame, features), feature_names=list(features), missing=np.nan)
    return np.asarray(booster.predict(data), dtype=np.float64)


# -- metrics ----------------------------------------------------------------------------------------------


def alert_count(rows: int, budget: float = ALERT_BUDGET) -> int:
    """How many transactions the budget lets the team review (at least one)."""
    return max(1, math.ceil(rows * budget))


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """The k highest scores (ties broken by row order, so the result is deterministic)."""
    order = np.argsort(-scores, kind="stable")
    mask = np.zeros(len(scores), dtype=bool)
    mask[order[:k]] = True
    return mask


def fraud_metrics(labels: np.ndarray, scores: np.ndarray, budget: float = ALERT_BUDGET) -> dict[str, float]:
    """PR-AUC (average precision), ROC-AUC, recall and precision at the alert budget, and context."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    if positives == 0 or positives == len(labels):
        raise EvaluationError("the test split needs both fraud and genuine labels")
    k = alert_count(len(labels), budget)
    alerts = top_k_mask(scores, k)
    hits = int(labels[alerts].sum())
    base_rate = positives / len(labels)
    pr_auc = float(average_precision_score(labels, scores))
    clipped = np.clip(scores, 0.0, 1.0)
    return {
        "pr_auc": pr_auc,
        "pr_auc_lift_over_baseline": pr_auc / base_rate,
        "roc_auc": float(roc_auc_score(labels, scores)),
        "recall_at_budget": hits / positives,
        "precision_at_budget": hits / k,
        "alert_budget": budget,
        "alerts": float(k),
        "alert_threshold": float(scores[alerts].min()),
        "base_rate": base_rate,
        "brier_score": float(np.mean((clipped - labels) ** 2)),
        "test_rows": float(len(labels)),
        "test_frauds": float(positives),
    }


# -- plots ------------------------------------------------------------------------------------------------


def plot_pr_curve(labels: np.ndarray, scores: np.ndarray, metrics: dict[str, float], path: Path) -> None:
    precision, recall, _ = precision_recall_curve(labels, scores)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(recall, precision, label=f"model (PR-AUC {metrics['pr_auc']:.3f})")
    ax.axhline(
        metrics["base_rate"], color="grey", linestyle="--", label=f"random ({metrics['base_rate']:.4f})"
    )
    ax.scatter(
        [metrics["recall_at_budget"]],
        [metrics["precision_at_budget"]],
        color="red",
        zorder=3,
        label=f"alert budget {metrics['alert_budget']:.1%}",
    )
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall, test")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def calibration_bins(labels: np.ndarray, scores: np.ndarray, bins: int = 12) -> pd.DataFrame:
    """Rows, mean score and observed fraud rate in log-spaced score bins (the scores span decades, so
    equal-width or quantile bins would put every fraud in one bin)."""
    clipped = np.clip(scores, 1e-7, 1.0)
    edges = np.logspace(np.log10(clipped.min()), 0, bins + 1)
    which = np.clip(np.searchsorted(edges, clipped, side="right") - 1, 0, bins - 1)
    frame = pd.DataFrame({"bin": which, "score": clipped, "label": labels})
    table = frame.groupby("bin").agg(
        rows=("label", "size"), predicted=("score", "mean"), observed=("label", "mean")
    )
    return table.reset_index(drop=True)


def plot_calibration(labels: np.ndarray, scores: np.ndarray, path: Path) -> None:
    """Observed fraud rate against mean score per log-spaced bin; bins without a fraud are drawn at the
    floor of the plot as hollow markers."""
    table = calibration_bins(labels, scores)
    floor = max(1e-6, 0.5 / len(labels))
    fig, ax = plt.subplots(figsize=(6, 4.5))
    lo = max(floor, float(table["predicted"].min()))
    ax.plot([lo, 1], [lo, 1], color="grey", linestyle="--", label="perfectly calibrated")
    hit = table["observed"] > 0
    ax.plot(table.loc[hit, "predicted"], table.loc[hit, "observed"], marker="o", label="model")
    ax.scatter(
        table.loc[~hit, "predicted"],
        np.full(int((~hit).sum()), floor),
        facecolors="none",
        edgecolors="tab:blue",
        label="bin without fraud",
    )
    ax.set(xscale="log", yscale="log", xlabel="mean predicted probability", ylabel="observed fraud rate")
    ax.set_title("Calibration, test (log-spaced score bins)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(labels: np.ndarray, alerts: np.ndarray, threshold: float, path: Path) -> None:
    matrix = np.array(
        [
            [int(((labels == 0) & ~alerts).sum()), int(((labels == 0) & alerts).sum())],
            [int(((labels == 1) & ~alerts).sum()), int(((labels == 1) & alerts).sum())],
        ]
    )
    fig, ax = plt.subplots(figsize=(5, 4.2))
    ax.imshow(np.log1p(matrix), cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}", ha="center", va="center", fontsize=12)
    ax.set_xticks([0, 1], ["no alert", "alert"])
    ax.set_yticks([0, 1], ["genuine", "fraud"])
    ax.set_title(f"Confusion at the alert threshold ({threshold:.4g})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def feature_importance(booster: xgb.Booster, features: list[str]) -> list[tuple[str, float]]:
    """(feature, total gain share) for every feature, highest first (features never split on get 0)."""
    gain = booster.get_score(importance_type="total_gain")
    total = sum(gain.values()) or 1.0
    ranked = [(f, gain.get(f, 0.0) / total) for f in features]
    return sorted(ranked, key=lambda item: (-item[1], item[0]))


def plot_importance(ranked: list[tuple[str, float]], path: Path) -> None:
    top = ranked[:IMPORTANCE_TOP_FEATURES][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(top) + 1.2))
    ax.barh([name for name, _ in top], [share for _, share in top])
    ax.set(xlabel="share of total gain", title="Feature importance (gain)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def shap_sample(labels: np.ndarray, rows: int = SHAP_SAMPLE_ROWS, seed: int = SEED) -> np.ndarray:
    """Row indices for the SHAP summary: every fraud (up to a quarter of the sample), the rest genuine
    rows drawn at random with a fixed seed, in row order."""
    rng = np.random.default_rng(seed)
    frauds = np.flatnonzero(labels == 1)
    genuine = np.flatnonzero(labels == 0)
    if len(labels) <= rows:
        return np.arange(len(labels))
    frauds = rng.choice(frauds, size=min(len(frauds), rows // 4), replace=False)
    genuine = rng.choice(genuine, size=min(len(genuine), rows - len(frauds)), replace=False)
    return np.sort(np.concatenate([frauds, genuine]))


def shap_values(booster: xgb.Booster, data: np.ndarray, features: list[str]) -> np.ndarray:
    """Per-row, per-feature contributions to the log-odds (the bias column dropped)."""
    matrix = xgb.DMatrix(data, feature_names=list(features), missing=np.nan)
    return np.asarray(booster.predict(matrix, pred_contribs=True))[:, :-1]


def plot_shap_summary(contributions: np.ndarray, data: np.ndarray, features: list[str], path: Path) -> None:
    """Beeswarm-style summary: one row per top feature, each dot a transaction, coloured by the feature's
    value (rank within the sample: blue low, red high; grey missing)."""
    order = np.argsort(-np.abs(contributions).mean(axis=0), kind="stable")[:SHAP_TOP_FEATURES]
    rng = np.random.default_rng(SEED)
    fig, ax = plt.subplots(figsize=(7.5, 0.38 * len(order) + 1.5))
    for row, j in enumerate(order[::-1]):
        values = data[:, j]
        finite = np.isfinite(values)
        colour = np.full(len(values), 0.5)
        if finite.sum() > 1:
            ranks = pd.Series(values[finite]).rank(pct=True).to_numpy()
            colour[finite] = ranks
        jitter = rng.uniform(-0.3, 0.3, len(values))
        ax.scatter(contributions[finite, j], row + jitter[finite], c=colour[finite], cmap="coolwarm", s=6)
        ax.scatter(contributions[~finite, j], row + jitter[~finite], color="lightgrey", s=6)
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(order)), [features[j] for j in order[::-1]])
    ax.set(xlabel="SHAP value (log-odds contribution)", title="SHAP summary (test sample)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# -- model card -------------------------------------------------------------------------------------------


def model_card(
    metrics: dict[str, float],
    document: dict[str, Any],
    ranked: list[tuple[str, float]],
    shap_ranked: list[tuple[str, float]],
    test: pd.DataFrame,
) -> str:
    training = document.get("training", {})
    hp = document.get("hyperparameters", {})
    best = training.get("best_iteration")
    trees = best + 1 if isinstance(best, int) else "?"
    period = ""
    if "ts" in test.columns and len(test):
        period = f"{pd.Timestamp(test['ts'].min()):%Y-%m-%d} to {pd.Timestamp(test['ts'].max()):%Y-%m-%d}"
    rows = document.get("split_rows", {})
    frauds = document.get("split_frauds", {})
    split_lines = "\n".join(
        f"| {name} | {rows.get(name, '?'):,} | {frauds.get(name, '?')} |"
        if isinstance(rows.get(name), int)
        else f"| {name} | ? | ? |"
        for name in ("train", "validation", "test")
    )
    rate = float(document.get("negative_sample_rate", 1.0))
    sampling = (
        f" Genuine train rows down-sampled to {rate:.1%} (every fraud kept), each weighted {1 / rate:.3g} so"
        " the loss sees the full data's balance."
        if rate < 1.0
        else ""
    )
    top = "\n".join(f"| {name} | {share:.3f} |" for name, share in ranked[:10])
    top_shap = "\n".join(f"| {name} | {value:.4f} |" for name, value in shap_ranked[:10])
    return f"""# Model card: fraud (per-transaction fraud probability)

## Purpose
Scores each card transaction with the probability that it is fraud, so the fraud team reviews the
highest-scored {metrics["alert_budget"]:.1%} of transactions (the alert budget). It is a decision
aid for analysts, not an automatic decline.

## Model
Gradient-boosted trees (XGBoost, `binary:logistic`, `hist`): {trees} trees kept of
{training.get("rounds_trained", "?")} trained (early stopping on validation PR-AUC,
{training.get("validation_aucpr", float("nan")):.4f} at the best iteration), max depth
{hp.get("max_depth", "?")}, learning rate {hp.get("eta", "?")}, seed {hp.get("seed", "?")}.
Class imbalance: `scale_pos_weight` = {training.get("scale_pos_weight", float("nan")):.2f} on the
training loss only; validation and test keep every row.{sampling}

## Data
Features of the `fraud_card` view: the transaction, the card's velocity and amounts over 1 h / 24 h / 7 d /
30 d windows, amount against the card's history, first-seen merchant / city / country / MCC, channel and
hour habits, the card's age, limit and chip: {len(document.get("features", []))} model inputs after
one-hot encoding. Every feature uses only events before the transaction (point-in-time correct).

Split by time in whole months; months with transactions but no fraud label at all are left out of every
split (the labels are missing there, not negative).

| split | rows | frauds |
|---|---|---|
{split_lines}

Test period: {period or "n/a"}.

## Test metrics
| metric | value |
|---|---|
| PR-AUC (average precision) | {metrics["pr_auc"]:.4f} |
| PR-AUC / base rate | {metrics["pr_auc_lift_over_baseline"]:.1f} |
| ROC-AUC | {metrics["roc_auc"]:.4f} |
| recall at the alert budget | {metrics["recall_at_budget"]:.3f} |
| precision at the alert budget | {metrics["precision_at_budget"]:.3f} |
| alert threshold (score) | {metrics["alert_threshold"]:.4g} |
| base rate | {metrics["base_rate"]:.5f} |
| Brier score | {metrics["brier_score"]:.6f} |
| test rows / frauds | {int(metrics["test_rows"]):,} / {int(metrics["test_frauds"])} |

## Most important features
| feature (gain) | share |
|---|---|
{top}

| feature (mean abs SHAP, test sample) | log-odds |
|---|---|
{top_shap}

## Limitations
- Probabilities are shifted upwards by the class weighting: read the calibration plot before using the
  score as a probability; rank-based use (the alert budget) is unaffected.
- Labels arrive late and some months have none; the test months are the latest labelled ones.
- Fraud patterns drift (e.g. the online share of fraud changes across years): monitor PR-AUC on
  delayed labels and retrain.
- The model sees no personal data (names, addresses, card numbers are never features).
"""


# -- the step ---------------------------------------------------------------------------------------------


def evaluate(model_dir: Path, test_dir: Path, out: Path) -> dict[str, Any]:
    """Score the test split, write evaluation.json, the plots and the model card into `out`."""
    booster, document = load_model(model_dir)
    features = list(document["features"])
    test = read_split(test_dir)
    if LABEL not in test.columns:
        raise EvaluationError(f"test split has no {LABEL!r} column")
    labels = test[LABEL].to_numpy().astype(int)
    scores = predict(booster, test, features)
    metrics = fraud_metrics(labels, scores)

    out.mkdir(parents=True, exist_ok=True)
    alerts = top_k_mask(scores, int(metrics["alerts"]))
    plot_pr_curve(labels, scores, metrics, out / PLOTS["pr_curve"])
    plot_calibration(labels, scores, out / PLOTS["calibration"])
    plot_confusion(labels, alerts, metrics["alert_threshold"], out / PLOTS["confusion"])
    ranked = feature_importance(booster, features)
    plot_importance(ranked, out / PLOTS["feature_importance"])
    sample = shap_sample(labels)
    data = feature_matrix(test.iloc[sample], features)
    contributions = shap_values(booster, data, features)
    plot_shap_summary(contributions, data, features, out / PLOTS["shap_summary"])
    mean_abs = np.abs(contributions).mean(axis=0)
    shap_ranked = sorted(zip(features, mean_abs.tolist(), strict=True), key=lambda item: (-item[1], item[0]))

    report = {
        "metrics": {name: {"value": value} for name, value in metrics.items()},
        "feature_importance_gain": dict(ranked[:IMPORTANCE_TOP_FEATURES]),
        "shap_mean_abs": dict(shap_ranked[:SHAP_TOP_FEATURES]),
        "shap_sample_rows": len(sample),
        "plots": dict(PLOTS),
        "model_card": "model_card.md",
    }
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    (out / "model_card.md").write_text(model_card(metrics, document, ranked, shap_ranked, test))
    return report


def main() -> None:
    root = opt_ml_root()
    report = evaluate(
        root / "processing/input/model", root / "processing/input/test", root / "processing/output/evaluation"
    )
    print(json.dumps({name: entry["value"] for name, entry in report["metrics"].items()}))


if __name__ == "__main__":
    try:
        main()
    except EvaluationError as error:
        print(f"evaluate failed: {error}", file=sys.stderr)
        sys.exit(2)
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
