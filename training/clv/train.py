"""CLV training (script mode): XGBoost on log spend, offset by the customer's own recent level.

Why gradient boosting rather than a probabilistic buy-till-you-die model (BG/NBD + Gamma-Gamma): the spend
of a card customer here is dominated by a drifting purchase rate (growth or decline over years), which
BG/NBD's stationary rate cannot follow, while the feature table already summarises the trend (quarterly
spend, growth ratios, a log-linear trend forecast). Boosting learns how much of that trend persists.

The booster's margin is `log1p(spend over the next 12 months) - log1p(base feature)`: the base feature
(`trend_forecast_12m` when the table has it, else `heuristic_last_12m`) enters as XGBoost's base margin,
so the trees learn a growth multiplier on the customer's own level instead of re-learning the level with
step functions. A prediction is `expm1(margin + log1p(base))`; `regression.json` beside `model.ubj`
records that, with the feature list, so the model registry can score the folder as it is.

Reads SM_CHANNEL_TRAIN / SM_CHANNEL_VALIDATION, writes SM_MODEL_DIR/{model.ubj, regression.json}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

LABELS = ("future_spend_12m", "label")  # the label's name in the feature table, first found wins
# Protected attributes are never inputs (the feature table leaves them out: features/model_inputs.py);
# this script runs alone in a container, so it refuses them itself too, whatever table it is given.
PROTECTED = frozenset({"gender", "age_band_start", "birth_year", "birth_year_band", "birth_month", "age"})
NOT_FEATURES = frozenset({"user_token", "as_of", "split", *LABELS, *PROTECTED})
PREFERRED_BASES = ("trend_forecast_12m", "heuristic_last_12m")
REGRESSION_FILE = "regression.json"
KIND = "xgboost_regression"


def read_channel(folder: str) -> pd.DataFrame:
    files = sorted(Path(folder).glob("*.parquet"))
    return pd.concat((pd.read_parquet(f) for f in files), ignore_index=True)


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """Every numeric column but the identifiers, split and label, in table order."""
    return [
        c
        for c in frame.columns
        if c not in NOT_FEATURES and pd.api.types.is_numeric_dtype(frame[c]) and frame[c].dtype != bool
    ]


def log_spend(values: pd.Series | np.ndarray) -> np.ndarray:
    return np.log1p(np.clip(np.asarray(values, dtype=float), 0.0, None))


def label_column(frame: pd.DataFrame) -> str:
    return next(c for c in LABELS if c in frame.columns)


def matrix(frame: pd.DataFrame, features: list[str], base: str) -> xgb.DMatrix:
    return xgb.DMatrix(
        frame[features].astype(float),
        label=log_spend(frame[label_column(frame)]),
        base_margin=log_spend(frame[base]),
        feature_names=features,
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--max_depth", type=int, default=4)
    parser.add_argument("--eta", type=float, default=0.05)
    parser.add_argument("--num_round", type=int, default=400)
    parser.add_argument("--objective", default="reg:squarederror")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--subsample", type=float, default=0.8)
    parser.add_argument("--colsample_bytree", type=float, default=0.8)
    parser.add_argument("--min_child_weight", type=float, default=3.0)
    parser.add_argument("--early_stopping_rounds", type=int, default=50)
    parser.add_argument("--base_feature", default="auto")
    args, _ = parser.parse_known_args()
    return args


def main() -> int:
    args = parse_args()
    if not args.objective.startswith("reg:"):
        raise SystemExit(f"objective {args.objective!r}: CLV trains a regression on log spend (reg:*)")
    train = read_channel(os.environ["SM_CHANNEL_TRAIN"])
    validation = read_channel(os.environ["SM_CHANNEL_VALIDATION"])
    features = feature_columns(train)
    if args.base_feature == "auto":
        base = next(b for b in PREFERRED_BASES if b in features)
    elif args.base_feature in features:
        base = args.base_feature
    else:
        raise SystemExit(f"base feature {args.base_feature!r} is not a feature column")
    params = {
        "objective": args.objective,
        "max_depth": args.max_depth,
        "eta": args.eta,
        "seed": args.seed,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        "nthread": 1,  # single-threaded: the same model bit for bit on every machine
        "eval_metric": "rmse",
    }
    booster = xgb.train(
        params,
        matrix(train, features, base),
        num_boost_round=args.num_round,
        evals=[(matrix(validation, features, base), "validation")],
        early_stopping_rounds=args.early_stopping_rounds,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    booster = booster[: best + 1]
    model_dir = Path(os.environ["SM_MODEL_DIR"])
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "model.ubj"))
    description = {
        "kind": KIND,
        "features": features,
        "target": "log1p of spend over the 12 months after the as-of date",
        "target_transform": "log1p",
        "base_margin_feature": base,
        "label": label_column(train),
        "trees": best + 1,
        "hyperparameters": {k: v for k, v in params.items() if k != "eval_metric"},
        "train_rows": len(train),
        "validation_rows": len(validation),
    }
    (model_dir / REGRESSION_FILE).write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    print(f"features={len(features)} base={base} trees={best + 1} train_rows={len(train)}")
    return 0


if __name__ == "__main__":
    code = main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
