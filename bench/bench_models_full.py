"""`python -m bench models_full --home HOME`: the full-size fraud model against its ceilings.

The fraud model the demo trained at full size (a home kept by `python -m bench e2e --users=2000
--keep-home`) scored on its own test split, beside, on the SAME rows:

- the raw-columns baseline: the same trainer on the transaction's raw columns only, fitted on the train
  and validation splits with every fraud and a sample of the non-frauds (`--negative-rate`, as the fraud
  pipeline's own negative down-sampling; PR-AUC depends on the ranking only);
- the oracle: the generator's true fraud probability (Bayes-optimal for these labels), the ceiling.

Nothing is re-trained for the model: it is the registered champion the demo served. Results go to
`bench/results/models.json` under "fraud_full_size" (other keys kept). Without `--home` it says so and
does nothing (`make bench` runs every benchmark without options).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from bench.bench_models import ORACLE_TARGET, _merge_models_result, oracle_scores
from bench.harness import print_table
from cdp.backends import Backends
from cdp.settings import Settings

MODEL = "cdp-fraud"
NEGATIVE_RATE = 0.05
SEED = 7


def _test_rows(backends: Backends) -> pd.DataFrame:
    """The test split of the training set, in time order."""
    return backends.catalog.query(
        "SELECT * FROM fraud_training_set WHERE split = 'test' ORDER BY ts, event_seq"
    ).to_pandas()


def _sampled(negative_rate: float | None) -> str:
    """An SQL condition keeping every fraud and `negative_rate` of the rest (by a hash of the id: the same
    rows every run); "" keeps every row."""
    if negative_rate is None:
        return ""
    return f" AND (CAST(s.label AS INTEGER) = 1 OR hash(s.txn_id) % 10000 < {int(negative_rate * 10_000)})"


def _raw_split(backends: Backends, split: str, negative_rate: float | None) -> pd.DataFrame:
    """The raw transaction columns of a split's rows, with the label as `is_fraud` expects it."""
    from training.fraud.preprocess import LABEL
    from training.fraud.raw_baseline import RAW_COLUMNS_SQL

    raw = backends.catalog.query(
        f"SELECT r.*, CAST(s.label AS INTEGER) AS {LABEL} FROM ({RAW_COLUMNS_SQL}) r "
        f"JOIN fraud_training_set s ON r.txn_id = s.txn_id "
        f"WHERE s.split = '{split}'{_sampled(negative_rate)} ORDER BY r.ts, r.txn_id"
    )
    return raw.to_pandas()


def _generated(settings: Settings) -> dict[str, Any]:
    """What the generator says it made (users, seed, rows) from its manifest."""
    manifest = settings.data_dir / "ground_truth" / "manifest.json"
    facts = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return {k: facts[k] for k in ("users", "seed", "rows") if k in facts}


def fraud_full_size(home: Path, negative_rate: float = NEGATIVE_RATE) -> dict[str, Any]:
    """The champion's metrics, the raw baseline's and the oracle's on the champion's test split."""
    from inference.loaded import load_version
    from training.fraud import evaluate, train
    from training.fraud.preprocess import LABEL, encode_features
    from training.fraud.raw_baseline import fit_raw_baseline, score_raw_baseline

    settings = Settings(home=home)
    backends = Backends(settings)
    registry = backends.model_registry
    version = registry.champion(MODEL)
    if version is None:
        raise SystemExit(f"{home}: model {MODEL} has no champion (run the demo there first)")
    model = load_version(version, backends.object_store)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    test = _test_rows(backends)
    labels = test["label"].to_numpy().astype(int)
    inputs = encode_features(test, model.spec).to_numpy(np.float32)
    matrix = xgboost.DMatrix(inputs, feature_names=list(model.features), missing=np.nan)
    model.booster.set_param({"nthread": 2})
    model_scores = np.asarray(model.booster.predict(matrix), dtype=np.float64)
    timings["score_model_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    args = train.parse_hyperparameters([])
    raw_train = _raw_split(backends, "train", negative_rate)
    raw_validation = _raw_split(backends, "validation", None)
    raw_booster, vocabulary = fit_raw_baseline(raw_train, raw_validation, args)
    raw_test = _raw_split(backends, "test", None).set_index("txn_id").loc[test["txn_id"]].reset_index()
    baseline_scores = score_raw_baseline(raw_booster, raw_test, vocabulary)
    timings["raw_baseline_s"] = time.perf_counter() - t0
    assert (raw_test[LABEL].to_numpy().astype(int) == labels).all(), "baseline rows out of line"

    t0 = time.perf_counter()
    oracle = oracle_scores(settings.data_dir, backends, test["txn_id"].to_numpy())
    timings["oracle_s"] = time.perf_counter() - t0

    results = {
        "model": evaluate.fraud_metrics(labels, model_scores),
        "raw_baseline": evaluate.fraud_metrics(labels, baseline_scores),
        "oracle": evaluate.fraud_metrics(labels, oracle),
    }
    model_pr = results["model"]["pr_auc"]
    ratios = {
        "pr_auc_vs_oracle": model_pr / results["oracle"]["pr_auc"],
        "pr_auc_vs_raw_baseline": model_pr / results["raw_baseline"]["pr_auc"],
        "oracle_pr_auc_vs_raw_baseline": results["oracle"]["pr_auc"] / results["raw_baseline"]["pr_auc"],
    }
    return {
        "data": {"generated": _generated(settings), "test_rows": len(test), "test_frauds": int(labels.sum())},
        "model_version": version.version,
        "model_metrics_registered": dict(version.metrics),
        "raw_baseline_training": {"negative_rate": negative_rate, "train_rows": len(raw_train)},
        "split": "whole months by time; months without any fraud label skipped (the demo's own split)",
        "results": results,
        "ratios": ratios,
        "targets": {
            "pr_auc_vs_oracle": {"target": ORACLE_TARGET, "met": ratios["pr_auc_vs_oracle"] >= ORACLE_TARGET}
        },
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m bench models_full")
    parser.add_argument("--home", type=Path, help="a platform home the demo ran in at full size")
    parser.add_argument("--negative-rate", type=float, default=NEGATIVE_RATE)
    options = parser.parse_args(argv or [])
    if options.home is None:
        print("models_full: needs --home (a full-size demo home, e.g. from `bench e2e --keep-home`)")
        return None
    result = fraud_full_size(options.home, options.negative_rate)
    rows = [
        {"scorer": name, "pr_auc": m["pr_auc"], "roc_auc": m["roc_auc"],
         "recall@0.5%": m["recall_at_budget"], "precision@0.5%": m["precision_at_budget"]}
        for name, m in result["results"].items()
    ]  # fmt: skip
    print_table(f"Fraud at full size, test split ({result['data']['test_rows']:,} rows)", rows)
    print_table("Fraud PR-AUC ratios", [result["ratios"]])
    path = _merge_models_result("fraud_full_size", result)
    print(f"wrote {path}")
    return result
