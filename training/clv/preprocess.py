"""CLV preprocess: the feature table's rows to train/validation/test Parquet splits.

The table's `split` column decides (train and validation rows are as of earlier cut-offs, test rows as of
the CLV cut-off). Without that column, customers are split 60/20/20 by a stable hash of their token.
Runs alone in a processing container: imports only numpy/pandas/pyarrow.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pandas as pd

OPT_ML = Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))
INPUT = OPT_ML / "processing/input/features"
OUTPUT = OPT_ML / "processing/output"
SPLITS = ("train", "validation", "test")
LABELS = ("future_spend_12m", "label")  # the label's name in the feature table, first found wins
HEURISTIC = "heuristic_last_12m"


def hash_split(token: str) -> str:
    """60/20/20 by the first bytes of SHA-256 of the customer token (same token, same split)."""
    bucket = int.from_bytes(hashlib.sha256(token.encode()).digest()[:4], "big") % 5
    return "train" if bucket < 3 else ("validation" if bucket == 3 else "test")


def _hash_rank(token: str) -> int:
    return int.from_bytes(hashlib.sha256(token.encode()).digest()[:8], "big")


def assign_splits(tokens: pd.Series) -> pd.Series:
    """(The same rule as the segmentation preprocess: each step script ships alone, importing no sibling.)
    `hash_split` per customer; when that leaves a split empty (a handful of customers), the customers
    in order of their token's hash are cut 60/20/20 instead, at least one in each split — still decided by
    the tokens alone, so the same customers get the same splits."""
    splits = tokens.map(hash_split)
    customers = tokens.nunique()
    if customers < len(SPLITS) or set(splits) == set(SPLITS):
        return splits
    ordered = sorted(tokens.unique(), key=_hash_rank)
    n_validation = n_test = max(1, round(0.2 * customers))
    n_train = customers - n_validation - n_test
    cut = {t: "train" for t in ordered[:n_train]}
    cut.update({t: "validation" for t in ordered[n_train : n_train + n_validation]})
    cut.update({t: "test" for t in ordered[n_train + n_validation :]})
    return tokens.map(cut)


def main() -> int:
    files = sorted(INPUT.glob("*.parquet"))
    if not files:
        print(f"no Parquet files in {INPUT}", file=sys.stderr)
        return 1
    frame = pd.concat((pd.read_parquet(f) for f in files), ignore_index=True)
    missing = [c for c in ("user_token", HEURISTIC) if c not in frame.columns]
    if not any(label in frame.columns for label in LABELS):
        missing.append(" or ".join(LABELS))
    if missing:
        print(f"feature table lacks columns {missing}", file=sys.stderr)
        return 1
    if "split" not in frame.columns:
        frame["split"] = assign_splits(frame["user_token"])
    for split in SPLITS:
        part = frame[frame["split"] == split].reset_index(drop=True)
        if part.empty:
            print(f"split {split!r} is empty", file=sys.stderr)
            return 1
        out = OUTPUT / split
        out.mkdir(parents=True, exist_ok=True)
        part.to_parquet(out / f"{split}.parquet", index=False)
        print(f"split={split} rows={len(part)} customers={part['user_token'].nunique()}")
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
