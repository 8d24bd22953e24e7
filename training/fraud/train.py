"""Fraud train (Training step, script mode): gradient-boosted trees on the fraud features.

Reads the train and validation splits written by preprocess.py (`SM_CHANNEL_TRAIN`,
`SM_CHANNEL_VALIDATION`) and the feature spec beside the train rows. `xgb.train` with the `hist` tree
method, early stopping on the validation PR-AUC (`aucpr`), the class imbalance handled by
`scale_pos_weight` on the training loss only (validation and test keep every row), a fixed seed.
Hyperparameters arrive as `--name value` arguments.

Writes into `SM_MODEL_DIR`: `model.ubj` (the booster cut at its best iteration, feature names set) and
`features.json` (the ordered feature list, the one-hot encoding, the label, the training summary).

Imports only numpy, pandas and xgboost (the training image has them; project code is not shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

LABEL = "is_fraud"
SPEC_FILE = "feature_spec.json"
MODEL_FILE = "model.ubj"
FEATURES_FILE = "features.json"


def parse_hyperparameters(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Hyperparameters from `--name value` arguments; unknown names are ignored (SageMaker adds some)."""
    p = argparse.ArgumentParser(description="Train the fraud booster.")
    p.add_argument("--max_depth", type=int, default=6)
    p.add_argument("--eta", type=float, default=0.1)
    p.add_argument("--num_round", type=int, default=300)
    p.add_argument("--early_stopping_rounds", type=int, default=40)
    # Early stopping counts only after this many trees, and the best iteration is chosen among them: a
    # handful of trees gives near-constant, badly calibrated scores, and the validation PR-AUC of a new
    # fraud pattern can peak early and climb again later.
    p.add_argument("--min_rounds", type=int, default=100)
    p.add_argument("--min_child_weight", type=float, default=1.0)
    p.add_argument("--subsample", type=float, default=0.8)
    p.add_argument("--colsample_bytree", type=float, default=0.8)
    p.add_argument("--reg_lambda", type=float, default=1.0)
    p.add_argument("--max_bin", type=int, default=256)
    # "auto": sqrt(negatives / positives) of the train split, a milder weight than the full ratio that
    # keeps the ranking gain and distorts probabilities less; a number sets it directly (1 = no weighting).
    p.add_argument("--scale_pos_weight", type=str, default="auto")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--nthread", type=int, default=int(os.environ.get("SM_NUM_CPUS", "0") or 0))
    args, _ = p.parse_known_args(argv)
    return args


def read_split(folder: Path) -> pd.DataFrame:
    files = sorted(Path(folder).glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no Parquet files in the {Path(folder).name} channel")
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def positive_weight(labels: np.ndarray, setting: str) -> float:
    """The `scale_pos_weight` to train with: a number, or "auto" = sqrt(negatives / positives)."""
    if setting != "auto":
        return float(setting)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    return float(np.sqrt(negatives / positives)) if positives else 1.0


def booster_params(args: argparse.Namespace, scale_pos_weight: float) -> dict[str, Any]:
    params: dict[str, Any] = {
        "objective": "binary:logistic",
        "eval_metric": "aucpr",
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "min_child_weight": args.min_child_weight,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "lambda": args.reg_lambda,
        "max_bin": args.max_bin,
        "scale_pos_weight": scale_pos_weight,
        "seed": args.seed,
    }
    if args.nthread > 0:
        params["nthread"] = args.nthread
    return params


def matrix(frame: pd.DataFrame, features: list[str], with_label: bool = True) -> xgb.DMatrix:
    """A DMatrix of the features (in order, names set) and, when asked, the label."""
    missing = [f for f in features if f not in frame.columns]
    if missing:
        raise KeyError(f"split lacks feature columns: {missing}")
    data = frame[features].to_numpy(np.float32)
    label = frame[LABEL].to_numpy(np.float32) if with_label else None
    return xgb.DMatrix(data, label=label, feature_names=list(features), missing=np.nan)


class EarlyStoppingAfter(xgb.callback.TrainingCallback):
    """Stop when validation PR-AUC has not improved for `patience` rounds, counting from `min_rounds`."""

    def __init__(self, min_rounds: int, patience: int, data: str = "validation", metric: str = "aucpr"):
        super().__init__()
        self.min_rounds, self.patience, self.data, self.metric = max(1, min_rounds), patience, data, metric
        self.best_iteration: int | None = None
        self.best_score = -np.inf

    def after_iteration(self, model: xgb.Booster, epoch: int, evals_log: dict) -> bool:
        if epoch + 1 < self.min_rounds:
            return False
        score = float(evals_log[self.data][self.metric][-1])
        if score > self.best_score:
            self.best_score, self.best_iteration = score, epoch
        return epoch - (self.best_iteration or 0) >= self.patience


def train_booster(
    train: pd.DataFrame, validation: pd.DataFrame, features: list[str], args: argparse.Namespace
) -> tuple[xgb.Booster, dict[str, Any]]:
    """The booster cut at its best validation PR-AUC, and a summary of the run."""
    labels = train[LABEL].to_numpy()
    weight = positive_weight(labels, args.scale_pos_weight)
    dtrain, dvalid = matrix(train, features), matrix(validation, features)
    history: dict[str, Any] = {}
    has_positives = int(validation[LABEL].sum()) > 0
    stopping = EarlyStoppingAfter(min(args.min_rounds, args.num_round), args.early_stopping_rounds)
    booster = xgb.train(
        booster_params(args, weight),
        dtrain,
        num_boost_round=args.num_round,
        evals=[(dtrain, "train"), (dvalid, "validation")],
        callbacks=[stopping] if has_positives else None,
        evals_result=history,
        verbose_eval=False,
    )
    rounds = booster.num_boosted_rounds()
    best = stopping.best_iteration if has_positives and stopping.best_iteration is not None else rounds - 1
    best_model = booster[: best + 1]
    best_model.feature_names = list(features)
    summary = {
        "best_iteration": best,
        "rounds_trained": rounds,
        "validation_aucpr": float(history["validation"]["aucpr"][best]),
        "scale_pos_weight": weight,
        "train_rows": len(train),
        "train_frauds": int(labels.sum()),
        "validation_rows": len(validation),
        "validation_frauds": int(validation[LABEL].sum()),
    }
    return best_model, summary


def save_model(
    model_dir: Path,
    booster: xgb.Booster,
    spec: dict[str, Any],
    summary: dict[str, Any],
    args: argparse.Namespace,
) -> None:
    """`model.ubj` and `features.json` into the model folder."""
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / MODEL_FILE))
    document = {
        "features": list(spec["features"]),
        "one_hot": spec.get("one_hot", {}),
        "label": LABEL,
        "hyperparameters": {k: v for k, v in vars(args).items() if k != "nthread"},
        "training": summary,
        "split_rows": spec.get("rows", {}),
        "split_frauds": spec.get("frauds", {}),
    }
    (model_dir / FEATURES_FILE).write_text(json.dumps(document, indent=2))


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_hyperparameters(argv)
    train_dir = Path(os.environ["SM_CHANNEL_TRAIN"])
    spec = json.loads((train_dir / SPEC_FILE).read_text())
    train = read_split(train_dir)
    validation = read_split(Path(os.environ["SM_CHANNEL_VALIDATION"]))
    booster, summary = train_booster(train, validation, spec["features"], args)
    save_model(Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")), booster, spec, summary, args)
    print(
        f"trained: best_iteration={summary['best_iteration']} of {summary['rounds_trained']} "
        f"validation_aucpr={summary['validation_aucpr']:.4f} "
        f"scale_pos_weight={summary['scale_pos_weight']:.2f} train_rows={summary['train_rows']}"
    )


if __name__ == "__main__":
    main()
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
