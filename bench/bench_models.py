"""Model benchmarks against their ceilings (fraud part).

Fraud: on a generated data set (100 users, `bench/.cache/ibm-100`), the data plane loads the lake (batch
job, then the stream's newest 5% through producer and consumer), the fraud training set is built (the
`fraud_card` features, split by whole months, unlabelled months skipped), and the three step scripts'
functions (training/fraud/) run on it. On the SAME test rows we score:

- the model (gradient-boosted trees on the fraud features),
- the raw-columns baseline (the same trainer on the transaction's raw columns only),
- the oracle: the generator's true fraud probability (Bayes-optimal for these labels), the ceiling.

Targets on the demo data: model PR-AUC >= 0.85 x oracle and >= 2 x the raw baseline.
Results go to `bench/results/models.json` under the "fraud" key (other models' keys are kept).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from bench.harness import RESULTS_DIR, print_table, write_result
from cdp.backends import Backends
from cdp.catalog.port import TableInfo
from cdp.settings import Settings

CACHE_DIR = Path(__file__).parent / ".cache"
USERS = 100
SEED = 7
TRAINING_SET_TABLE = "fraud_training_set"
ORACLE_TARGET, BASELINE_TARGET = 0.85, 2.0


def generated_source(users: int = USERS, seed: int = SEED) -> Path:
    """`bench/.cache/ibm-<users>`, generated on first use."""
    from cdp.synth.generator import generate

    out = CACHE_DIR / f"ibm-{users}"
    if not (out / "ground_truth" / "manifest.json").is_file():
        generate(out, users=users, seed=seed)
    return out


def load_lake(source: Path, backends: Backends) -> dict[str, Any]:
    """The data plane into `backends`' lake: batch history, then the stream part through the stream."""
    from cdp.batch.job import run_batch
    from cdp.streaming.lake_sink import consume
    from cdp.streaming.produce import produce

    batch = run_batch(source, backends)
    sent = produce(source, backends)
    sink = consume(backends)
    return {"batch_rows": batch.batch_rows, "stream_sent": sent.sent, "stream_written": sink.written}


def fraud_training_set(backends: Backends) -> pa.Table:
    """What `fraud_training_set` holds: the fraud_card features of every transaction in a labelled month,
    with `split` (train / validation / test by whole months), `event_seq` and the view's label column."""
    from features.offline import compute_view
    from features.training import month_label_counts, plan_split

    plan = plan_split(
        month_label_counts(backends, None, None), min_eval_frauds=backends.settings.training_eval_min_frauds
    )
    rows = compute_view(backends.catalog, "fraud_card")
    months = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(rows["year"], pa.string()), 4, "0"),
        pc.utf8_lpad(pc.cast(rows["month"], pa.string()), 2, "0"),
        "-",
    ).to_pylist()
    split = pa.array([plan.split_of(m) for m in months], pa.string())
    rows = rows.append_column("split", split).filter(pc.is_valid(split))
    if "event_seq" not in rows.column_names:
        seqs = backends.catalog.query("SELECT txn_id, event_seq FROM transactions")
        rows = rows.join(seqs, "txn_id", join_type="left outer")
    return rows.sort_by([("ts", "ascending"), ("event_seq", "ascending"), ("txn_id", "ascending")])


def register_training_set(backends: Backends, table: pa.Table) -> str:
    """Write the training set into the lake and register it in the catalog as `fraud_training_set`."""
    location = f"s3://{backends.settings.lake_bucket}/features/{TRAINING_SET_TABLE}/"
    path = backends.object_store.local_path(location + "part-0.parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    backends.catalog.register_table(
        TableInfo(name=TRAINING_SET_TABLE, location=location, schema=table.schema)
    )
    return location


def raw_columns(backends: Backends) -> pd.DataFrame:
    """The raw transaction columns the baseline learns from, indexed by txn_id."""
    from training.fraud.raw_baseline import RAW_COLUMNS_SQL

    return backends.catalog.query(RAW_COLUMNS_SQL).to_pandas().set_index("txn_id")


def oracle_scores(
    source: Path, backends: Backends, txn_ids: np.ndarray, allow_missing: bool = False
) -> np.ndarray:
    """The generator's true fraud probability of each row, joined by `txn_id`: the ground truth's rows
    (user, card, file line) get their lake ids from the platform's own keys, as the batch job makes them.
    An erased customer's keys are gone, so their rows get no id: with `allow_missing` they score NaN."""
    from cdp.lake.transactions import CardNumbers

    columns = ["line", "user", "card", "fraud_probability"]
    truth = pq.read_table(source / "ground_truth" / "transactions.parquet", columns=columns)
    cards = CardNumbers(backends.protector)
    ids = cards.columns(cards.numbers(truth["user"], truth["card"]), truth["line"])["txn_id"]
    live = pc.is_valid(ids)  # an erased customer's rows have no id any more (and are not in the lake)
    by_id = pd.Series(
        truth["fraud_probability"].filter(live).to_numpy(),
        index=ids.filter(live).to_numpy(zero_copy_only=False),
    )
    scores = by_id.reindex(txn_ids).to_numpy()
    if not allow_missing and np.isnan(scores).any():
        raise ValueError("some test rows have no ground-truth row")
    return scores


def compare_on_test(source: Path, backends: Backends, training_set: pa.Table, out: Path) -> dict[str, Any]:
    """Run preprocess / train / evaluate on the training set; score model, raw baseline and oracle on the
    same test rows. Plots and the model card of the model go to `out`."""
    from training.fraud import evaluate, preprocess, train
    from training.fraud.raw_baseline import fit_raw_baseline, score_raw_baseline

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    parts, spec = preprocess.split_frames(training_set.to_pandas())
    timings["preprocess_s"] = time.perf_counter() - t0

    args = train.parse_hyperparameters([])
    t0 = time.perf_counter()
    booster, summary = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    timings["train_s"] = time.perf_counter() - t0
    model_dir = out / "model"
    train.save_model(model_dir, booster, spec, summary, args)
    test_dir = out / "test"
    test_dir.mkdir(parents=True, exist_ok=True)
    parts["test"].to_parquet(test_dir / "test.parquet", index=False)
    t0 = time.perf_counter()
    report = evaluate.evaluate(model_dir, test_dir, out / "evaluation")
    timings["evaluate_s"] = time.perf_counter() - t0

    test = parts["test"]
    labels = test[preprocess.LABEL].to_numpy().astype(int)
    model_scores = evaluate.predict(booster, test, spec["features"])

    raw = raw_columns(backends)

    def raw_split(name: str) -> pd.DataFrame:
        frame = raw.loc[parts[name]["txn_id"].to_numpy()].reset_index()
        frame[preprocess.LABEL] = parts[name][preprocess.LABEL].to_numpy()
        return frame

    t0 = time.perf_counter()
    raw_booster, vocabulary = fit_raw_baseline(raw_split("train"), raw_split("validation"), args)
    timings["raw_baseline_train_s"] = time.perf_counter() - t0
    baseline_scores = score_raw_baseline(raw_booster, raw_split("test"), vocabulary)
    oracle = oracle_scores(source, backends, test["txn_id"].to_numpy())

    results = {
        "model": evaluate.fraud_metrics(labels, model_scores),
        "raw_baseline": evaluate.fraud_metrics(labels, baseline_scores),
        "oracle": evaluate.fraud_metrics(labels, oracle),
    }
    model_pr = results["model"]["pr_auc"]
    return {
        "results": results,
        "ratios": {
            "pr_auc_vs_oracle": model_pr / results["oracle"]["pr_auc"],
            "pr_auc_vs_raw_baseline": model_pr / results["raw_baseline"]["pr_auc"],
            "recall_at_budget_vs_oracle": results["model"]["recall_at_budget"]
            / max(results["oracle"]["recall_at_budget"], 1e-12),
            # the most any model can reach over the baseline on these labels
            "oracle_pr_auc_vs_raw_baseline": results["oracle"]["pr_auc"] / results["raw_baseline"]["pr_auc"],
        },
        "split_rows": spec["rows"],
        "split_frauds": spec["frauds"],
        "features": len(spec["features"]),
        "training": summary,
        "evaluation_json_metrics": {k: v["value"] for k, v in report["metrics"].items()},
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def _merge_models_result(key: str, value: dict[str, Any]) -> Path:
    """Write `models.json` with `key` replaced and every other model's key kept."""
    path = RESULTS_DIR / "models.json"
    existing = json.loads(path.read_text()) if path.is_file() else {}
    kept = {k: v for k, v in existing.items() if k not in ("benchmark", "when", "machine")}
    return write_result("models", {**kept, key: value})


def fraud_benchmark(users: int = USERS) -> dict[str, Any]:
    source = generated_source(users)
    with tempfile.TemporaryDirectory() as tmp:
        backends = Backends(Settings(home=Path(tmp) / "home"))
        t0 = time.perf_counter()
        loaded = load_lake(source, backends)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        training_set = fraud_training_set(backends)
        features_s = time.perf_counter() - t0
        comparison = compare_on_test(source, backends, training_set, Path(tmp) / "run")
    comparison["timings_s"] = {
        "load_lake_s": round(load_s, 2),
        "training_set_s": round(features_s, 2),
        **comparison["timings_s"],
    }
    ratios = comparison["ratios"]
    comparison["targets"] = {
        "pr_auc_vs_oracle": {"target": ORACLE_TARGET, "met": ratios["pr_auc_vs_oracle"] >= ORACLE_TARGET},
        "pr_auc_vs_raw_baseline": {
            "target": BASELINE_TARGET,
            "met": ratios["pr_auc_vs_raw_baseline"] >= BASELINE_TARGET,
            "reachable": ratios["oracle_pr_auc_vs_raw_baseline"] >= BASELINE_TARGET,
        },
    }
    if not comparison["targets"]["pr_auc_vs_raw_baseline"]["reachable"]:
        comparison["targets"]["pr_auc_vs_raw_baseline"]["why_missed"] = (
            f"unreachable on this data: even the oracle's PR-AUC is only "
            f"{ratios['oracle_pr_auc_vs_raw_baseline']:.2f} x the raw baseline's. The generator draws fraud "
            "labels from a logistic score whose largest terms (night hour, high-risk MCC, bad credential, "
            "foreign, online, refund) are raw columns of the transaction itself, so a raw-columns model "
            "already gets most of the signal; on the real IBM data the raw baseline is ~0.18."
        )
    return {
        "data": {"generated_users": users, "seed": SEED, "transactions_loaded": loaded},
        "split": "whole months by time; months without any fraud label skipped",
        "alert_budget": 0.005,
        **comparison,
    }


def main() -> None:
    fraud = fraud_benchmark()
    rows = [
        {
            "scorer": name,
            "pr_auc": m["pr_auc"],
            "roc_auc": m["roc_auc"],
            "recall@0.5%": m["recall_at_budget"],
            "precision@0.5%": m["precision_at_budget"],
        }
        for name, m in fraud["results"].items()
    ]
    print_table(
        f"Fraud, test split ({int(fraud['results']['model']['test_rows']):,} rows, "
        f"{int(fraud['results']['model']['test_frauds'])} frauds)",
        rows,
    )
    ratios = fraud["ratios"]
    print_table("Fraud PR-AUC ratios", [{k: v for k, v in ratios.items()}])
    for name, target in fraud["targets"].items():
        verdict = "met" if target["met"] else "MISSED"
        print(f"target {name} >= {target['target']}: {verdict} ({ratios[name]:.3f})")
        if "why_missed" in target:
            print(f"  why: {target['why_missed']}")
    path = _merge_models_result("fraud", fraud)
    print(f"written {path}")


if __name__ == "__main__":
    main()
