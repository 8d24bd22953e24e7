"""Fraud preprocess (Processing step): the feature query's result -> train / validation / test Parquet.

Input: `OPT_ML/processing/input/features/*.parquet`, the rows of `fraud_training_set` (a `split` column
with train / validation / test by whole months, unlabelled months already left out, the label
`is_fraud`, keys and the `fraud_card` features). Output: `OPT_ML/processing/output/<split>/<split>.parquet`
holding the keys kept for evaluation joins (`txn_id`, `event_seq`, `ts`), the label as 0/1 and the
features as float32 columns, rows in time order. The split comes from the data, never from a random draw.

Text columns are one-hot encoded (`<column>__<value>`) with the values seen in the train split; booleans
become 0/1; missing values stay missing (NaN, which the trees route on their own). The ordered feature
list and the encoding go to `train/feature_spec.json`; train.py copies it into the model folder so
evaluation and serving apply the same encoding.

Only this file is shipped to the processing container: it imports no sibling module and no project code.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SPLITS = ("train", "validation", "test")
SPLIT_COLUMN = "split"
LABEL = "is_fraud"
LABEL_ALIASES = ("label",)  # the feature view's own name for the label
KEPT_KEYS = ("txn_id", "event_seq", "ts")  # written with every row, never features
NOT_FEATURES = frozenset(
    {*KEPT_KEYS, SPLIT_COLUMN, LABEL, *LABEL_ALIASES, "card_token", "user_token", "year", "month"}
)
SPEC_FILE = "feature_spec.json"


class PreprocessError(ValueError):
    """The feature query's result cannot be split (names the column or file, never a row value)."""


def opt_ml_root() -> Path:
    return Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))


def read_parquet_folder(folder: Path) -> pd.DataFrame:
    """Every Parquet file of a folder, in name order, as one frame."""
    files = sorted(folder.glob("*.parquet"))
    if not files:
        raise PreprocessError(f"no Parquet files in {folder.name}/")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _safe_token(value: str) -> str:
    """A category value as a feature-name token (XGBoost rejects `[`, `]`, `<` and commas in names)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", value).strip("_").lower() or "blank"


def one_hot_name(column: str, value: str) -> str:
    return f"{column}__{_safe_token(value)}"


def feature_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """The ordered feature list and one-hot vocabulary, from the train rows of `frame`."""
    train = frame[frame[SPLIT_COLUMN] == "train"]
    features: list[str] = []
    one_hot: dict[str, list[str]] = {}
    for column in frame.columns:
        if column in NOT_FEATURES:
            continue
        dtype = frame[column].dtype
        if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
            features.append(column)
        elif pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype):
            values = sorted(str(v) for v in train[column].dropna().unique())
            one_hot[column] = values
            features.extend(one_hot_name(column, v) for v in values)
        # timestamps and nested types are not features
    if len(set(features)) != len(features):
        raise PreprocessError("two columns encode to the same feature name")
    return {"features": features, "one_hot": one_hot, "label": LABEL, "keys": list(KEPT_KEYS)}


def encode_features(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The model's feature frame (float32, spec order) from rows with the original columns."""
    columns: dict[str, np.ndarray] = {}
    encoded = {one_hot_name(c, v): (c, v) for c, values in spec["one_hot"].items() for v in values}
    for name in spec["features"]:
        if name in encoded:
            column, value = encoded[name]
            columns[name] = (frame[column].astype("string") == value).fillna(False).to_numpy(np.float32)
        else:
            columns[name] = pd.to_numeric(frame[name], errors="coerce").astype("float32").to_numpy()
    return pd.DataFrame(columns, index=frame.index)


def split_frames(frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """{split: keys + label + encoded features, in time order} and the feature spec."""
    if LABEL not in frame.columns:
        alias = next((a for a in LABEL_ALIASES if a in frame.columns), None)
        if alias is None:
            raise PreprocessError(f"the feature query's result has no {LABEL!r} column")
        frame = frame.rename(columns={alias: LABEL})
    for column in (SPLIT_COLUMN, "txn_id"):
        if column not in frame.columns:
            raise PreprocessError(f"the feature query's result has no {column!r} column")
    unknown = set(frame[SPLIT_COLUMN].dropna().unique()) - set(SPLITS)
    if unknown:
        raise PreprocessError(f"column 'split' holds values other than {', '.join(SPLITS)}")
    if frame[LABEL].isna().any():
        raise PreprocessError(f"column {LABEL!r} has missing labels")
    if not (frame[SPLIT_COLUMN] == "train").any():
        raise PreprocessError("the train split is empty")
    spec = feature_spec(frame)
    order = [k for k in ("ts", "event_seq", "txn_id") if k in frame.columns]
    frame = frame.sort_values(order, kind="stable").reset_index(drop=True)
    parts: dict[str, pd.DataFrame] = {}
    for name in SPLITS:
        rows = frame[frame[SPLIT_COLUMN] == name]
        keys = rows[[k for k in KEPT_KEYS if k in rows.columns]].reset_index(drop=True)
        label = rows[LABEL].astype(bool).astype("int8").reset_index(drop=True).rename(LABEL)
        features = encode_features(rows, spec).reset_index(drop=True)
        parts[name] = pd.concat([keys, label, features], axis=1)
    spec["rows"] = {name: len(part) for name, part in parts.items()}
    spec["frauds"] = {name: int(part[LABEL].sum()) for name, part in parts.items()}
    return parts, spec


def main() -> None:
    root = opt_ml_root()
    frame = read_parquet_folder(root / "processing/input/features")
    parts, spec = split_frames(frame)
    for name, part in parts.items():
        out = root / "processing/output" / name
        out.mkdir(parents=True, exist_ok=True)
        part.to_parquet(out / f"{name}.parquet", index=False)
    (root / "processing/output/train" / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    summary = " ".join(f"{n}={spec['rows'][n]}/{spec['frauds'][n]}" for n in SPLITS)
    print(f"rows={len(frame)} features={len(spec['features'])} rows/frauds: {summary}")


if __name__ == "__main__":
    try:
        main()
    except PreprocessError as error:
        print(f"preprocess failed: {error}", file=sys.stderr)
        sys.exit(2)
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
