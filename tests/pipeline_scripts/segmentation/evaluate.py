"""Test evaluate: silhouette score of the holdout customers' cluster assignment."""

import json
import os
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
model_dir = OPT_ML / "processing/input/model"
with tarfile.open(model_dir / "model.tar.gz") as tar:
    tar.extractall(model_dir, filter="data")
model = json.loads((model_dir / "model.json").read_text())
test = pd.concat(pd.read_parquet(p) for p in (OPT_ML / "processing/input/test").glob("*.parquet"))
z = (test[model["features"]].to_numpy(float) - np.array(model["mean"])) / np.array(model["std"])
centroids = np.array(model["centroids"])
labels = np.argmin(((z[:, None, :] - centroids[None]) ** 2).sum(-1), axis=1)
distances = np.sqrt(((z[:, None, :] - z[None]) ** 2).sum(-1))
scores = []
for i, label in enumerate(labels):
    same = labels == label
    same[i] = False
    if not same.any():
        continue
    a = distances[i, same].mean()
    b = min(distances[i, labels == k].mean() for k in set(labels.tolist()) - {label})
    scores.append((b - a) / max(a, b))
report = {
    "metrics": {
        "silhouette": {"value": float(np.mean(scores))},
        "clusters_used": {"value": len(set(labels.tolist()))},
    }
}
out = OPT_ML / "processing/output/evaluation"
out.mkdir(parents=True, exist_ok=True)
(out / "evaluation.json").write_text(json.dumps(report))

# Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
# ("terminate called without an active exception", exit -6) or hang at exit once every output
# is written (apache/arrow#34314).
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
