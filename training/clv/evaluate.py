"""CLV evaluation: the model against the last-12-months heuristic on the test customers.

Writes `evaluation.json` (`rmse_ratio_to_heuristic` is the pipeline's gate), plots and `model_card.md` to
OPT_ML/processing/output/evaluation/. Runs alone in a processing container (numpy/pandas/xgboost/matplotlib).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
MODEL_INPUT = OPT_ML / "processing/input/model"
TEST_INPUT = OPT_ML / "processing/input/test"
OUTPUT = OPT_ML / "processing/output/evaluation"
HEURISTIC = "heuristic_last_12m"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    ra = pd.Series(a).rank().to_numpy()
    rb = pd.Series(b).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(np.mean((predicted - truth) ** 2))),
        "mae": float(np.mean(np.abs(predicted - truth))),
        "spearman": spearman(predicted, truth),
    }


def load_model() -> tuple[xgb.Booster, dict]:
    with tarfile.open(MODEL_INPUT / "model.tar.gz") as tar:
        tar.extractall(MODEL_INPUT, filter="data")
    description = json.loads((MODEL_INPUT / "regression.json").read_text())
    booster = xgb.Booster()
    booster.load_model(str(MODEL_INPUT / "model.ubj"))
    return booster, description


def predict(booster: xgb.Booster, description: dict, frame: pd.DataFrame) -> np.ndarray:
    features = description["features"]
    base = np.log1p(np.clip(frame[description["base_margin_feature"]].to_numpy(float), 0.0, None))
    margin = booster.predict(
        xgb.DMatrix(frame[features].astype(float), feature_names=features, base_margin=base)
    )
    return np.expm1(np.asarray(margin, dtype=float))


def plots(predicted: np.ndarray, heuristic: np.ndarray, truth: np.ndarray, booster: xgb.Booster) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(5, 5))
    top = float(max(truth.max(), predicted.max(), heuristic.max(), 1.0))
    ax.scatter(truth, heuristic, s=8, alpha=0.5, label="last 12 months (heuristic)")
    ax.scatter(truth, predicted, s=8, alpha=0.7, label="model")
    ax.plot([1, top], [1, top], color="grey", linewidth=1)
    ax.set_xscale("symlog")
    ax.set_yscale("symlog")
    ax.set_xlabel("realised spend, next 12 months ($)")
    ax.set_ylabel("predicted ($)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(OUTPUT / "predicted_vs_realised.png", dpi=100)
    plt.close(fig)
    written.append("predicted_vs_realised.png")

    gain = booster.get_score(importance_type="total_gain")
    if gain:
        names, values = zip(*sorted(gain.items(), key=lambda kv: kv[1])[-15:], strict=True)
        fig, ax = plt.subplots(figsize=(6, 5))
        ax.barh(names, values)
        ax.set_xlabel("total gain")
        fig.tight_layout()
        fig.savefig(OUTPUT / "feature_importance.png", dpi=100)
        plt.close(fig)
        written.append("feature_importance.png")
    return written


def model_card(description: dict, metrics: dict[str, float], plot_files: list[str]) -> str:
    hp = description["hyperparameters"]
    lines = [
        "# CLV model",
        "",
        "Predicts each customer's net card spend over the 12 months after a cut-off from the history "
        "before it.",
        "",
        "## Method",
        f"- XGBoost regression ({hp['objective']}) on log1p spend, {description['trees']} trees, "
        f"max depth {hp['max_depth']}, eta {hp['eta']}, seed {hp['seed']}.",
        f"- Base margin: log1p(`{description['base_margin_feature']}`); the trees learn a growth multiplier.",
        f"- {len(description['features'])} features: " + ", ".join(f"`{f}`" for f in description["features"]),
        "- Train and validation rows are as of earlier cut-offs; test rows as of the CLV cut-off.",
        "",
        "## Test results (same customers)",
        "",
        "| | model | last-12-months heuristic |",
        "|---|---|---|",
        f"| MAE ($) | {metrics['mae']:.0f} | {metrics['heuristic_mae']:.0f} |",
        f"| RMSE ($) | {metrics['rmse']:.0f} | {metrics['heuristic_rmse']:.0f} |",
        f"| Spearman | {metrics['spearman']:.3f} | {metrics['heuristic_spearman']:.3f} |",
        "",
        f"MAE ratio to the heuristic {metrics['mae_ratio_to_heuristic']:.3f}; "
        f"RMSE ratio (the gate) {metrics['rmse_ratio_to_heuristic']:.3f}; "
        f"{int(metrics['test_customers'])} test customers.",
        "",
        "## Limits",
        "- Spend is net of refunds and excludes transactions labelled as fraud; unlabelled fraud counts "
        "as spend.",
        "- Customers with under 3 months of history before the cut-off are not scored.",
        "",
        "## Plots",
        *[f"- `{p}`" for p in plot_files],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    booster, description = load_model()
    test = pd.concat((pd.read_parquet(p) for p in sorted(TEST_INPUT.glob("*.parquet"))), ignore_index=True)
    truth = test[description["label"]].to_numpy(float)
    predicted = predict(booster, description, test)
    heuristic = test[HEURISTIC].to_numpy(float)
    model, base = errors(predicted, truth), errors(heuristic, truth)
    metrics = {
        **model,
        **{f"heuristic_{k}": v for k, v in base.items()},
        "rmse_ratio_to_heuristic": model["rmse"] / base["rmse"] if base["rmse"] > 0 else float("inf"),
        "mae_ratio_to_heuristic": model["mae"] / base["mae"] if base["mae"] > 0 else float("inf"),
        "test_customers": float(test["user_token"].nunique()),
        "mean_realised_spend": float(truth.mean()),
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    report = {"metrics": {k: {"value": v} for k, v in metrics.items()}}
    (OUTPUT / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot_files = plots(predicted, heuristic, truth, booster)
    (OUTPUT / "model_card.md").write_text(model_card(description, metrics, plot_files))
    print(" ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
