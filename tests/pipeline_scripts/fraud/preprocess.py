"""Test preprocess: order the feature rows by time and split 60/20/20 into train/validation/test."""

import os
import sys
from pathlib import Path

import pandas as pd

OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
frame = pd.concat(
    pd.read_parquet(p) for p in sorted((OPT_ML / "processing/input/features").glob("*.parquet"))
)
frame = frame.sort_values("event_time").reset_index(drop=True)
cuts = [0, int(len(frame) * 0.6), int(len(frame) * 0.8), len(frame)]
for split, start, end in zip(("train", "validation", "test"), cuts[:-1], cuts[1:], strict=True):
    out = OPT_ML / "processing/output" / split
    out.mkdir(parents=True, exist_ok=True)
    frame.iloc[start:end].to_parquet(out / f"{split}.parquet", index=False)
print(f"rows={len(frame)}")

# Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
# ("terminate called without an active exception", exit -6) or hang at exit once every output
# is written (apache/arrow#34314).
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
