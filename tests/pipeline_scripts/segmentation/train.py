"""Test train: k-means (Lloyd's algorithm, numpy) with `--n_clusters`; centroids saved as JSON."""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = ["recency_days", "frequency", "monetary", "online_share"]
parser = argparse.ArgumentParser()
parser.add_argument("--n_clusters", type=int, required=True)
parser.add_argument("--seed", type=int, default=0)
args, _ = parser.parse_known_args()
train = pd.concat(pd.read_parquet(p) for p in Path(os.environ["SM_CHANNEL_TRAIN"]).glob("*.parquet"))
x = train[FEATURES].to_numpy(float)
mean, std = x.mean(0), x.std(0) + 1e-9
z = (x - mean) / std
rng = np.random.default_rng(args.seed)
centroids = z[rng.choice(len(z), args.n_clusters, replace=False)]
for _ in range(50):
    labels = np.argmin(((z[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
    centroids = np.array(
        [z[labels == k].mean(0) if (labels == k).any() else centroids[k] for k in range(args.n_clusters)]
    )
model = {"features": FEATURES, "mean": mean.tolist(), "std": std.tolist(), "centroids": centroids.tolist()}
Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps(model))

# Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
# ("terminate called without an active exception", exit -6) or hang at exit once every output
# is written (apache/arrow#34314).
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
