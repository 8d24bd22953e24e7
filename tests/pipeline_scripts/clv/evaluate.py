"""Test evaluate: RMSE of the model divided by RMSE of the last-12-months heuristic."""

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
truth = test["future_value_12m"].to_numpy(float)
predicted = np.c_[np.ones(len(test)), test[model["features"]].to_numpy(float)] @ np.array(model["weights"])
rmse = float(np.sqrt(np.mean((predicted - truth) ** 2)))
heuristic = float(np.sqrt(np.mean((test["spend_last_12m"].to_numpy(float) - truth) ** 2)))
report = {
    "metrics": {
        "rmse": {"value": rmse},
        "heuristic_rmse": {"value": heuristic},
        "rmse_ratio_to_heuristic": {"value": rmse / heuristic},
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
