"""Segmentation evaluation on the holdout customers: silhouette (the pipeline's gate), k, segment sizes.

Writes `evaluation.json`, plots and `model_card.md` to OPT_ML/processing/output/evaluation/. Runs alone in a
processing container (numpy/pandas/scikit-learn/matplotlib); assignment is the nearest centroid after the
model's own log1p + standardisation, as the registry's centroid model does.
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
MODEL_INPUT = OPT_ML / "processing/input/model"
TEST_INPUT = OPT_ML / "processing/input/test"
OUTPUT = OPT_ML / "processing/output/evaluation"


def load_model() -> dict:
    with tarfile.open(MODEL_INPUT / "model.tar.gz") as tar:
        tar.extractall(MODEL_INPUT, filter="data")
    return json.loads((MODEL_INPUT / "model.json").read_text())


def standardised(model: dict, frame: pd.DataFrame) -> np.ndarray:
    x = frame[model["features"]].to_numpy(float)
    x = np.where(np.isfinite(x), x, 0.0)
    for i, name in enumerate(model["features"]):
        if name in model["log1p_features"]:
            x[:, i] = np.log1p(np.clip(x[:, i], 0.0, None))
    return (x - np.array(model["scaler"]["mean"])) / np.array(model["scaler"]["scale"])


def assign(model: dict, z: np.ndarray) -> np.ndarray:
    centroids = np.array(model["centroids"])
    return np.argmin(((z[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)


def silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette; 0.0 when fewer than two segments occur (no separation to measure)."""
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2 or len(set(labels.tolist())) >= len(z):
        return 0.0
    return float(silhouette_score(z, labels))


def plots(model: dict, z: np.ndarray, labels: np.ndarray) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s["name"] for s in model["segments"]]
    centroids = np.array(model["centroids"])
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(model["features"])), 0.6 * len(names) + 2))
    image = ax.imshow(np.clip(centroids, -3, 3), cmap="RdBu_r", vmin=-3, vmax=3, aspect="auto")
    ax.set_yticks(range(len(names)), names)
    ax.set_xticks(range(len(model["features"])), model["features"], rotation=70, ha="right", fontsize=7)
    fig.colorbar(image, label="segment mean, standard deviations from all customers")
    fig.tight_layout()
    fig.savefig(OUTPUT / "segment_profiles.png", dpi=100)
    plt.close(fig)

    centred = z - z.mean(axis=0)
    _, _, vt = np.linalg.svd(np.vstack([centred, centroids - z.mean(axis=0)]), full_matrices=False)
    xy = centred @ vt[:2].T
    fig, ax = plt.subplots(figsize=(6, 5))
    for k, name in enumerate(names):
        mask = labels == k
        ax.scatter(xy[mask, 0], xy[mask, 1], s=10, label=name)
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(OUTPUT / "holdout_segments.png", dpi=100)
    plt.close(fig)
    return ["segment_profiles.png", "holdout_segments.png"]


def model_card(model: dict, metrics: dict[str, float], plot_files: list[str]) -> str:
    selection = model["k_selection"]
    scores = ", ".join(f"k={k}: {v:.3f}" for k, v in selection["scores"].items())
    lines = [
        "# Customer segmentation model",
        "",
        "Named behavioural segments for every customer (RFM, spending mix by MCC group, channel use, "
        "timing).",
        "",
        "## Method",
        f"- {len(model['features'])} features; log1p on {', '.join(model['log1p_features']) or 'none'}; "
        "then standardised.",
        f"- k-means, k = {model['k']} chosen by the highest mean silhouette ({scores}); "
        f"seed {model['seed']}.",
        f"- Soft assignment (`predict_proba`): {model['soft_assignment']}.",
        "- Names come from the profiles by a fixed rule; segments are ordered by name, so ids are stable.",
        "",
        "## Segments (fitting customers)",
        "",
        "| id | name | customers | share |",
        "|---|---|---|---|",
        *[f"| {s['id']} | {s['name']} | {s['size']} | {s['share']:.1%} |" for s in model["segments"]],
        "",
        "## Holdout",
        f"Silhouette {metrics['silhouette']:.3f} on {int(metrics['test_customers'])} holdout customers.",
        "",
        "## Plots",
        *[f"- `{p}`" for p in plot_files],
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    model = load_model()
    test = pd.concat((pd.read_parquet(p) for p in sorted(TEST_INPUT.glob("*.parquet"))), ignore_index=True)
    z = standardised(model, test)
    labels = assign(model, z)
    metrics: dict[str, float] = {
        "silhouette": silhouette(z, labels),
        "k": float(model["k"]),
        "segments_used": float(len(set(labels.tolist()))),
        "test_customers": float(len(test)),
        "train_silhouette": float(model["k_selection"]["scores"][str(model["k"])]),
    }
    for segment in model["segments"]:
        metrics[f"segment_{segment['id']}_size"] = float(segment["size"])
        metrics[f"segment_{segment['id']}_test_size"] = float((labels == segment["id"]).sum())
    OUTPUT.mkdir(parents=True, exist_ok=True)
    report = {"metrics": {k: {"value": v} for k, v in metrics.items()}}
    (OUTPUT / "evaluation.json").write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    plot_files = plots(model, z, labels)
    (OUTPUT / "model_card.md").write_text(model_card(model, metrics, plot_files))
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
