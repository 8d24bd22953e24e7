"""`python -m bench models_full --home HOME`: the full-size fraud model against its ceilings.

A fraud model the demo trained at full size (a home kept by `python -m bench e2e --users=2000
--keep-home`) scored on its own training set's test split, beside, on the SAME rows:

- the raw-columns baseline: the same trainer on the transaction's raw columns only, fitted on the train
  and validation splits with every fraud and a sample of the non-frauds (`--negative-rate`, as the fraud
  pipeline's own negative down-sampling; PR-AUC depends on the ranking only);
- the oracle: the generator's true fraud probability (Bayes-optimal for these labels), the ceiling.

The version judged is by default the demo's first champion: the model trained on the batch history before
the demo injected drift into the stream. The retrained champion's test split holds the newest months, whose
source labels the generator withholds and whose only frauds are the injected card-testing pattern: the
generator's probability knows nothing of those, so it is no ceiling there; that model is reported against
the raw baseline only ("retrained_champion").
A version's rows are those its pipeline run read (the Preprocess step's query result, kept
by the local executor), registered in the home's catalog as `bench_fraud_training_set` for the queries.

Nothing is re-trained for the models: they are the registered versions the demo served. Results go to
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
import pyarrow.parquet as pq
import xgboost

from bench.bench_models import ORACLE_TARGET, _merge_models_result, oracle_scores
from bench.harness import print_table
from cdp.backends import Backends
from cdp.catalog.port import TableInfo
from cdp.registry.port import ModelVersion
from cdp.settings import Settings

MODEL = "cdp-fraud"
SET_TABLE = "bench_fraud_training_set"
NEGATIVE_RATE = 0.05
SEED = 7


def _test_rows(backends: Backends) -> pd.DataFrame:
    """The test split of the judged training set, in time order."""
    return backends.catalog.query(
        f"SELECT * FROM {SET_TABLE} WHERE split = 'test' ORDER BY ts, event_seq"
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
        f"JOIN {SET_TABLE} s ON r.txn_id = s.txn_id "
        f"WHERE s.split = '{split}'{_sampled(negative_rate)} ORDER BY r.ts, r.txn_id"
    )
    return raw.to_pandas()


def _register_set_of(backends: Backends, version: ModelVersion) -> dict[str, Any]:
    """Register the rows `version`'s pipeline run read (its Preprocess step's query result, every split)
    as `SET_TABLE`; returns where they are."""
    pipeline, execution = version.lineage.pipeline_run_id.split("/")
    short = pipeline.removeprefix("cdp-")
    location = f"s3://{backends.settings.lake_bucket}/pipelines/{short}/athena/{execution}/Preprocess/"
    files = sorted(backends.object_store.local_path(location).glob("*.parquet"))
    if not files:
        raise SystemExit(f"{version.model_name} v{version.version}: no training rows at {location}")
    schema = pq.read_schema(files[0])
    backends.catalog.register_table(TableInfo(name=SET_TABLE, location=location, schema=schema))
    return {"pipeline_run": version.lineage.pipeline_run_id, "rows_read_by_preprocess": location}


def _first_champion(registry: Any) -> int:
    """The version that first became champion (the demo's model of the batch history)."""
    became = [e.version for e in registry.history(MODEL) if e.change == "became"]
    if not became:
        raise SystemExit(f"model {MODEL} never had a champion (run the demo there first)")
    return became[0]


def _generated(settings: Settings) -> dict[str, Any]:
    """What the generator says it made (users, seed, rows) from its manifest."""
    manifest = settings.data_dir / "ground_truth" / "manifest.json"
    facts = json.loads(manifest.read_text()) if manifest.is_file() else {}
    return {k: facts[k] for k in ("users", "seed", "rows") if k in facts}


def _judge(
    backends: Backends, version: ModelVersion, negative_rate: float, with_oracle: bool
) -> dict[str, Any]:
    """`version` on its own set's test split, beside the raw baseline (and the oracle)."""
    from inference.loaded import load_version
    from training.fraud import evaluate, train
    from training.fraud.preprocess import LABEL, encode_features
    from training.fraud.raw_baseline import fit_raw_baseline, score_raw_baseline

    training_set = _register_set_of(backends, version)
    model = load_version(version, backends.object_store)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    test = _test_rows(backends)
    labels = test["label"].to_numpy().astype(int)
    inputs = encode_features(test, model.spec).to_numpy(np.float32)
    matrix = xgboost.DMatrix(inputs, feature_names=list(model.features), missing=np.nan)
    model.booster.set_param({"nthread": 2})
    scores = {"model": np.asarray(model.booster.predict(matrix), dtype=np.float64)}
    timings["score_model_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    args = train.parse_hyperparameters([])
    raw_train = _raw_split(backends, "train", negative_rate)
    raw_validation = _raw_split(backends, "validation", None)
    raw_booster, vocabulary = fit_raw_baseline(raw_train, raw_validation, args)
    raw_test = _raw_split(backends, "test", None).set_index("txn_id").loc[test["txn_id"]].reset_index()
    scores["raw_baseline"] = score_raw_baseline(raw_booster, raw_test, vocabulary)
    timings["raw_baseline_s"] = time.perf_counter() - t0
    assert (raw_test[LABEL].to_numpy().astype(int) == labels).all(), "baseline rows out of line"

    erased_rows = 0
    if with_oracle:
        t0 = time.perf_counter()
        txn_ids = test["txn_id"].to_numpy()
        oracle = oracle_scores(backends.settings.data_dir, backends, txn_ids, allow_missing=True)
        timings["oracle_s"] = time.perf_counter() - t0
        # the demo erases a customer after training: their rows stay in the set under tokens nobody can
        # link any more, and the ground truth cannot be joined to them; every scorer skips those rows
        known = ~np.isnan(oracle)
        erased_rows = int((~known).sum())
        if erased_rows > 0.001 * len(known):
            raise SystemExit(f"{erased_rows} of {len(known)} test rows have no ground-truth row")
        labels = labels[known]
        scores = {name: values[known] for name, values in scores.items()}
        scores["oracle"] = oracle[known]

    results = {name: evaluate.fraud_metrics(labels, values) for name, values in scores.items()}
    model_pr = results["model"]["pr_auc"]
    ratios = {"pr_auc_vs_raw_baseline": model_pr / results["raw_baseline"]["pr_auc"]}
    if with_oracle:
        ratios["pr_auc_vs_oracle"] = model_pr / results["oracle"]["pr_auc"]
        ratios["oracle_pr_auc_vs_raw_baseline"] = (
            results["oracle"]["pr_auc"] / results["raw_baseline"]["pr_auc"]
        )
    judged = {
        "model_version": version.version,
        "training_set": training_set,
        "data": {
            "test_rows": int(len(labels)),
            "test_frauds": int(labels.sum()),
            "test_rows_of_erased_customers_skipped": erased_rows,
        },
        "model_metrics_registered": dict(version.metrics),
        "raw_baseline_training": {"negative_rate": negative_rate, "train_rows": len(raw_train)},
        "results": results,
        "ratios": ratios,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    if with_oracle:
        met = ratios["pr_auc_vs_oracle"] >= ORACLE_TARGET
        judged["targets"] = {"pr_auc_vs_oracle": {"target": ORACLE_TARGET, "met": met}}
    return judged


def fraud_full_size(
    home: Path, negative_rate: float = NEGATIVE_RATE, version: int | None = None
) -> dict[str, Any]:
    """The first champion (or `version`) against the raw baseline and the oracle on its own test split;
    the current champion, when another, against the raw baseline on its own."""
    settings = Settings(home=home)
    backends = Backends(settings)
    registry = backends.model_registry
    judged = registry.get(MODEL, version if version is not None else _first_champion(registry))
    result = _judge(backends, judged, negative_rate, with_oracle=True)
    result["data"]["generated"] = _generated(settings)
    result["split"] = "whole months by time; months without any fraud label skipped (the demo's own split)"
    champion = registry.champion(MODEL)
    if champion is not None and champion.version != judged.version:
        result["retrained_champion"] = {
            "why_no_oracle": "its test months carry only the injected card-testing frauds (the source "
            "withholds their labels), which the generator's probability does not know",
            **_judge(backends, champion, negative_rate, with_oracle=False),
        }
    return result


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    parser = argparse.ArgumentParser(prog="python -m bench models_full")
    parser.add_argument("--home", type=Path, help="a platform home the demo ran in at full size")
    parser.add_argument("--negative-rate", type=float, default=NEGATIVE_RATE)
    parser.add_argument("--version", type=int, help="the version judged (default: the first champion)")
    options = parser.parse_args(argv or [])
    if options.home is None:
        print("models_full: needs --home (a full-size demo home, e.g. from `bench e2e --keep-home`)")
        return None
    result = fraud_full_size(options.home, options.negative_rate, options.version)
    rows = [
        {"scorer": name, "pr_auc": m["pr_auc"], "roc_auc": m["roc_auc"],
         "recall@0.5%": m["recall_at_budget"], "precision@0.5%": m["precision_at_budget"]}
        for name, m in result["results"].items()
    ]  # fmt: skip
    rows_tested = result["data"]["test_rows"]
    title = f"Fraud v{result['model_version']} at full size, its test split ({rows_tested:,} rows)"
    print_table(title, rows)
    print_table("Fraud PR-AUC ratios", [result["ratios"]])
    retrained = result.get("retrained_champion")
    if retrained:
        print_table(
            f"Retrained champion v{retrained['model_version']} on its own test split (injected drift)",
            [
                {"scorer": n, "pr_auc": m["pr_auc"], "roc_auc": m["roc_auc"]}
                for n, m in retrained["results"].items()
            ],
        )
    path = _merge_models_result("fraud_full_size", result)
    print(f"wrote {path}")
    return result
