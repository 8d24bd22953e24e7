"""Segmentation training (script mode): scaler + k-means, k by silhouette, saved as a JSON centroid model.

- Features: every numeric column but identifiers. Skewed non-negative columns (skewness > 1 on the fitting
  customers: spend, counts, days) enter as log1p; then every column is standardised.
- Fitted on the train and validation customers (the test customers are the gate's holdout).
- k: the k in [k_min, n_clusters] with the highest mean silhouette on the fitting customers (ties: smaller k).
  `--n_clusters` is the largest number of segments the bank wants to run campaigns on.
- k-means: scikit-learn Lloyd with 10 initialisations from `--seed`.
- Segments are named from their profiles by a fixed rule (`naming.py`) and ordered by name, so the same
  clustering gets the same ids and names on every retrain.
Writes SM_MODEL_DIR/model.json (kind "centroid_model"); nothing is pickled.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from naming import segment_names
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

KIND = "centroid_model"
# Protected attributes are never inputs (the feature table leaves them out: features/model_inputs.py);
# this script runs alone in a container, so it refuses them itself too, whatever table it is given.
PROTECTED = frozenset({"gender", "age_band_start", "birth_year", "birth_year_band", "birth_month", "age"})
NOT_FEATURES = frozenset({"user_token", "as_of", "split", *PROTECTED})
# Segments describe behaviour: profile attributes (income, score, age, cards held) and how long or how
# long ago a customer has been active describe the customer's situation, not how they spend.
NOT_BEHAVIOUR = frozenset(
    {
        "yearly_income", "fico_score", "num_credit_cards", "gender",
        "tenure_days", "transactions_ever", "error_share_365d", "recency_days", "spend_trend_90d",
        "purchases_30d", "purchases_90d", "net_spend_30d", "net_spend_90d", "active_cards_90d",
        "net_spend_90_180d", "net_spend_180_270d", "net_spend_270_365d", "net_spend_365_730d",
    }
)  # fmt: skip
SKEW_LIMIT = 1.0
SOFT_ASSIGNMENT = (
    "softmax over segments of minus the Euclidean distance to each centroid (standardised units)"
)


def read_channel(folder: str) -> pd.DataFrame:
    files = sorted(Path(folder).glob("*.parquet"))
    return pd.concat((pd.read_parquet(f) for f in files), ignore_index=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c
        for c in frame.columns
        if c not in NOT_FEATURES
        and c not in NOT_BEHAVIOUR
        and pd.api.types.is_numeric_dtype(frame[c])
        and frame[c].dtype != bool
    ]


def log_columns(x: np.ndarray, features: list[str]) -> list[str]:
    """Non-negative columns with skewness above SKEW_LIMIT."""
    out = []
    for i, name in enumerate(features):
        column = x[:, i]
        sd = column.std()
        if column.min() >= 0 and sd > 0 and float(np.mean(((column - column.mean()) / sd) ** 3)) > SKEW_LIMIT:
            out.append(name)
    return out


def transform(x: np.ndarray, features: list[str], logged: list[str]) -> np.ndarray:
    x = x.copy()
    for i, name in enumerate(features):
        if name in logged:
            x[:, i] = np.log1p(np.clip(x[:, i], 0.0, None))
    return x


def choose_k(z: np.ndarray, k_min: int, k_max: int, seed: int) -> tuple[int, dict[str, float]]:
    scores: dict[str, float] = {}
    for k in range(k_min, min(k_max, len(z) - 1) + 1):
        labels = KMeans(n_clusters=k, n_init=30, random_state=seed).fit_predict(z)
        if len(set(labels.tolist())) < 2:
            continue
        scores[str(k)] = float(silhouette_score(z, labels))
    if not scores:
        raise SystemExit("too few customers to choose a number of segments")
    best = max(scores.items(), key=lambda kv: (round(kv[1], 6), -int(kv[0])))
    return int(best[0]), scores


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n_clusters", type=int, default=8, help="largest k searched")
    parser.add_argument("--k_min", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args, _ = parser.parse_known_args()
    return args


def main() -> int:
    args = parse_args()
    frame = pd.concat(
        [read_channel(os.environ["SM_CHANNEL_TRAIN"]), read_channel(os.environ["SM_CHANNEL_VALIDATION"])],
        ignore_index=True,
    )
    features = feature_columns(frame)
    raw = frame[features].to_numpy(float)
    raw = np.where(np.isfinite(raw), raw, 0.0)
    logged = log_columns(raw, features)
    x = transform(raw, features, logged)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale

    k, scores = choose_k(z, max(2, args.k_min), max(args.k_min, args.n_clusters), args.seed)
    kmeans = KMeans(n_clusters=k, n_init=30, random_state=args.seed).fit(z)
    labels, centroids = kmeans.labels_, kmeans.cluster_centers_
    profiles = [
        {name: float(v) for name, v in zip(features, raw[labels == j].mean(axis=0), strict=True)}
        for j in range(k)
    ]
    names = segment_names(features, centroids.tolist(), profiles)
    order = sorted(range(k), key=lambda j: (names[j], centroids[j].round(6).tolist()))
    segments = [
        {
            "id": new_id,
            "name": names[j],
            "size": int((labels == j).sum()),
            "share": float((labels == j).mean()),
            "profile": profiles[j],
        }
        for new_id, j in enumerate(order)
    ]
    model = {
        "kind": KIND,
        "format_version": 1,
        "features": features,
        "log1p_features": logged,
        "scaler": {"mean": mean.tolist(), "scale": scale.tolist()},
        "centroids": centroids[order].tolist(),
        "segments": segments,
        "k": k,
        "k_selection": {
            "criterion": "silhouette",
            "range": [int(min(map(int, scores))), int(max(map(int, scores)))],
            "scores": scores,
        },
        "soft_assignment": SOFT_ASSIGNMENT,
        "seed": args.seed,
        "fitted_customers": len(frame),
    }
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    print(f"customers={len(frame)} features={len(features)} k={k} silhouette={scores[str(k)]:.3f}")
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
