"""Fraud training at scale: preprocess + train (+ evaluate) as the pipeline runs them, measured.

`python -m bench fraud_training --rows N [--baseline-rows M] [--rates auto,1] [--num-round R]` builds a
synthetic input of N rows with the columns and types of `fraud_training_set` (keys, split by whole months,
the label at ~0.2%, the `fraud_card` features with fraud-dependent shifts so that training has something
to learn), written row group by row group so this process stays small. The step scripts then run as
subprocesses under the step-script contract (`CDP_OPT_ML_ROOT`, `SM_CHANNEL_*`), each measured for wall
time, CPU seconds and peak RSS of its process tree (the local executor's own measurement):

- the current scripts at N rows, once per negative sample rate of `--rates`;
- the scripts as they were before streaming (read from git at `BASELINE_COMMIT`) on the first
  `--baseline-rows` rows, beside the current scripts on the same rows: the old ones hold the whole
  input in pandas and do not fit at full size.

Results go to `bench/results/fraud_training.json`. Quality figures here are on synthetic rows (they show
that training ran and that down-sampling does not break it, not the model's real quality: see
bench/results/models.json for that).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bench.harness import RESULTS_DIR, print_table, write_result
from pipelines.local.usage import ProcessUsage, run_measured
from pipelines.spec import TRAINING_DIR

SCRIPTS = TRAINING_DIR / "fraud"
BASELINE_COMMIT = "e11b81c"  # the last commit with the in-memory preprocess / train
REPO = Path(__file__).resolve().parent.parent
ROW_GROUP = 1_000_000
FRAUD_RATE = 0.002
SIGNAL = 0.25  # how far fraud rows shift each feature (1: nearly separable, 0: no signal)
MONTHS = 180  # 2005-01 .. 2019-12
FIRST_MONTH = np.datetime64("2005-01", "M")
VALIDATION_MONTHS, TEST_MONTHS = 12, 12
MCC_GROUPS = (
    "dining",
    "grocery",
    "retail",
    "health",
    "fuel",
    "entertainment",
    "utilities_and_telecom",
    "services",
    "electronics_and_digital",
    "transport",
    "travel",
    "cash_and_gambling",
)
WINDOWS = ("1h", "24h", "7d", "30d")
WINDOW_RATE = {"1h": 0.3, "24h": 2.5, "7d": 15.0, "30d": 60.0}


# -- the synthetic input ----------------------------------------------------------------------------------


def _split_of(month_index: np.ndarray) -> np.ndarray:
    train_end = MONTHS - VALIDATION_MONTHS - TEST_MONTHS
    return np.where(
        month_index < train_end, "train", np.where(month_index < MONTHS - TEST_MONTHS, "validation", "test")
    )


def synthetic_chunk(start: int, rows: int, total: int, rng: np.random.Generator) -> pa.Table:
    """Rows `start .. start + rows` of a `total`-row training set in time order (types as the real one)."""
    seq = np.arange(start, start + rows, dtype=np.int64)
    span = MONTHS * 30 * 86_400
    seconds = (seq * span) // max(total, 1)
    ts = np.datetime64("2005-01-01T00:00:00", "s") + seconds.astype("timedelta64[s]")
    month_index = (ts.astype("datetime64[M]") - FIRST_MONTH).astype(np.int64)
    fraud = rng.random(rows) < FRAUD_RATE
    f = fraud * SIGNAL
    amount = np.exp(rng.normal(3.5 + 1.2 * f, 1.0, rows)) * 100
    hour = np.where(fraud, rng.integers(0, 24, rows), np.clip(rng.normal(14, 4, rows), 0, 23)).astype(
        np.int32
    )
    token = np.char.add("c", (seq % 50_000).astype(str))
    columns: dict[str, Any] = {
        "txn_id": pa.array(np.char.add(np.char.add(token, "-"), seq.astype(str))),
        "event_seq": seq,
        "card_token": pa.array(np.char.add("crd_", token)),
        "user_token": pa.array(np.char.add("usr_", (seq % 20_000).astype(str))),
        "ts": pa.array(ts.astype("datetime64[us]")),
        "year": ts.astype("datetime64[Y]").astype(np.int64) + 1970,
        "month": ts.astype("datetime64[M]").astype(np.int64) % 12 + 1,
        "label": fraud,
        "amount_cents": amount.astype(np.int64),
        "is_online": rng.random(rows) < 0.15 + 0.5 * f,
        "is_foreign": rng.random(rows) < 0.02 + 0.2 * f,
        "is_refund": rng.random(rows) < 0.01,
        "has_error": rng.random(rows) < 0.02 + 0.1 * f,
        "has_bad_credential": rng.random(rows) < 0.005 + 0.05 * f,
        "hour_of_day": hour,
        "mcc_group": pa.array(rng.choice(MCC_GROUPS, rows)),
        "is_high_risk_mcc": rng.random(rows) < 0.05 + 0.2 * f,
    }
    for window in WINDOWS:
        count = rng.poisson(WINDOW_RATE[window] * (1 + 2 * f))
        mean = np.where(count > 0, amount * rng.uniform(0.5, 1.5, rows), np.nan)
        columns[f"txn_count_{window}"] = count.astype(np.int64)
        columns[f"amount_sum_{window}"] = np.nan_to_num(mean * count).astype(np.int64)
        columns[f"amount_mean_{window}"] = pa.array(mean, from_pandas=True)
        columns[f"amount_max_{window}"] = pa.array(mean * 1.5, from_pandas=True).cast(pa.int64(), safe=False)
    for name in ("error_count_24h", "bad_credential_count_24h", "online_count_24h", "foreign_count_24h"):
        columns[name] = rng.poisson(0.2 + f).astype(np.int64)
    columns["amount_zscore"] = rng.normal(1.5 * f, 1.0, rows)
    columns["seconds_since_previous"] = rng.exponential(40_000 / (1 + 5 * f)).astype(np.int64)
    for name, share in (("merchant", 0.2), ("city", 0.05), ("state_or_country", 0.02), ("mcc", 0.05)):
        columns[f"is_new_{name}"] = rng.random(rows) < share + 0.4 * f
    for window, rate in (("1h", 0.1), ("24h", 0.8), ("7d", 4.0)):
        columns[f"new_merchant_count_{window}"] = rng.poisson(rate * (1 + f)).astype(np.int64)
    columns["channel_usual_share"] = np.clip(rng.beta(5, 1, rows) - 0.4 * f, 0, 1)
    columns["channel_changed"] = rng.random(rows) < 0.1 + 0.4 * f
    columns["hour_usual_share"] = np.clip(rng.beta(2, 8, rows) - 0.05 * f, 0, 1)
    columns["card_age_days"] = rng.integers(0, 5_000, rows).astype(np.int64)
    columns["credit_limit"] = (rng.integers(1, 30, rows) * 1_000).astype(np.int64)
    columns["has_chip"] = rng.random(rows) < 0.8
    columns["split"] = pa.array(_split_of(month_index))
    return pa.table(columns)


def write_synthetic(path: Path, rows: int, seed: int = 7) -> dict[str, Any]:
    """`rows` synthetic training-set rows into one Parquet file, `ROW_GROUP` rows at a time."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    frauds = 0
    try:
        for start in range(0, rows, ROW_GROUP):
            chunk = synthetic_chunk(start, min(ROW_GROUP, rows - start), rows, rng)
            frauds += int(np.asarray(chunk["label"]).sum())
            writer = writer or pq.ParquetWriter(path, chunk.schema)
            writer.write_table(chunk)
    finally:
        if writer is not None:
            writer.close()
    return {"rows": rows, "frauds": frauds, "bytes": path.stat().st_size}


def every_kth_row(source: Path, target: Path, rows: int) -> None:
    """About `rows` rows of `source`, every k-th one (so every month and split keeps its share), in order."""
    reader = pq.ParquetFile(source, pre_buffer=False)
    step = max(1, reader.metadata.num_rows // rows)
    target.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(target, reader.schema_arrow) as writer:
        offset = 0
        for group in range(reader.num_row_groups):
            table = reader.read_row_group(group)
            first = (-offset) % step
            writer.write_table(table.take(np.arange(first, table.num_rows, step)))
            offset += table.num_rows


# -- the steps ------------------------------------------------------------------------------------------


def baseline_scripts(folder: Path) -> Path | None:
    """The pre-streaming preprocess.py / train.py / evaluate.py from git (None without git history)."""
    folder.mkdir(parents=True, exist_ok=True)
    for script in ("preprocess.py", "train.py", "evaluate.py"):
        done = subprocess.run(
            ["git", "show", f"{BASELINE_COMMIT}:training/fraud/{script}"],
            cwd=REPO,
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            return None
        (folder / script).write_bytes(done.stdout)
    return folder


def _figures(usage: ProcessUsage) -> dict[str, Any]:
    return {
        "exit_code": usage.returncode,
        "wall_s": round(usage.wall_seconds, 2),
        "cpu_s": round(usage.cpu_seconds, 2),
        "peak_rss_gb": round(usage.peak_rss_bytes / 2**30, 3),
    }


def _run(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> ProcessUsage:
    with log.open("ab") as handle:
        return run_measured(command, env={**os.environ, **env}, cwd=cwd, stdout=handle)


def run_pipeline_steps(
    scripts: Path, features: Path, work: Path, preprocess_args: list[str], train_args: list[str]
) -> dict[str, Any]:
    """preprocess -> train -> evaluate of `scripts` on the Parquet file `features`, each measured."""
    shutil.rmtree(work, ignore_errors=True)
    pre = work / "preprocess"
    (pre / "processing/input/features").mkdir(parents=True)
    os.link(features, pre / "processing/input/features/query-result.parquet")
    log = work / "steps.log"
    python = sys.executable
    result: dict[str, Any] = {}
    usage = _run(
        [python, str(scripts / "preprocess.py"), *preprocess_args], {"CDP_OPT_ML_ROOT": str(pre)}, pre, log
    )
    result["preprocess"] = _figures(usage)
    if usage.returncode != 0:
        return result
    spec = json.loads((pre / "processing/output/train/feature_spec.json").read_text())
    result["split_rows"] = spec.get("rows")
    result["train_rows_written"] = spec.get("written_rows", spec.get("rows", {})).get("train")
    result["negative_sample_rate"] = spec.get("negative_sample_rate", 1.0)
    model = work / "model"
    env = {
        "SM_CHANNEL_TRAIN": str(pre / "processing/output/train"),
        "SM_CHANNEL_VALIDATION": str(pre / "processing/output/validation"),
        "SM_MODEL_DIR": str(model),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
    }
    usage = _run([python, str(scripts / "train.py"), *train_args], env, scripts, log)
    result["train"] = _figures(usage)
    if usage.returncode != 0:
        return result
    result["training"] = json.loads((model / "features.json").read_text())["training"]
    ev = work / "evaluate"
    (ev / "processing/input").mkdir(parents=True)
    shutil.copytree(model, ev / "processing/input/model")
    (ev / "processing/input/test").symlink_to(pre / "processing/output/test")
    usage = _run([python, str(scripts / "evaluate.py")], {"CDP_OPT_ML_ROOT": str(ev)}, ev, log)
    result["evaluate"] = _figures(usage)
    if usage.returncode == 0:
        metrics = json.loads((ev / "processing/output/evaluation/evaluation.json").read_text())["metrics"]
        result["test_metrics"] = {k: metrics[k]["value"] for k in ("pr_auc", "roc_auc", "brier_score")}
    return result


def _rate_args(rate: str) -> list[str]:
    return ["--negative-sample-rate", rate]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench fraud_training")
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--baseline-rows", type=int, default=2_000_000, help="0: no baseline")
    p.add_argument("--rates", default="auto,1", help="negative sample rates to run at --rows")
    p.add_argument(
        "--num-round", type=int, default=None, help="cap on boosting rounds (default: the pipeline's)"
    )
    p.add_argument("--work-dir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--keep-runs", action="store_true", help="keep the results file's other runs")
    args = p.parse_args(argv)
    train_args = ["--num_round", str(args.num_round)] if args.num_round else []

    with tempfile.TemporaryDirectory(prefix="bench-fraud-training-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        features = work / "input" / "training_set.parquet"
        data = write_synthetic(features, args.rows)
        print(
            f"synthetic input: {data['rows']:,} rows, {data['frauds']:,} frauds, "
            f"{data['bytes'] / 2**30:.2f} GB"
        )
        runs: dict[str, Any] = {}
        for rate in [r.strip() for r in args.rates.split(",") if r.strip()]:
            key = f"streaming_rate_{rate}_rows_{args.rows}"
            runs[key] = run_pipeline_steps(SCRIPTS, features, work / key, _rate_args(rate), train_args)
            print(key, json.dumps(runs[key]))
        if args.baseline_rows:
            rows = min(args.baseline_rows, args.rows)
            subset = work / "input" / "baseline.parquet"
            every_kth_row(features, subset, rows)
            old = baseline_scripts(work / "baseline_scripts")
            if old is not None:
                key = f"in_memory_before_rows_{rows}"
                runs[key] = run_pipeline_steps(old, subset, work / key, [], train_args)
                print(key, json.dumps(runs[key]))
            for rate in ("1", "auto"):
                key = f"streaming_rate_{rate}_rows_{rows}"
                if key not in runs:
                    runs[key] = run_pipeline_steps(SCRIPTS, subset, work / key, _rate_args(rate), train_args)
                    print(key, json.dumps(runs[key]))

    print_table(
        "fraud preprocess / train / evaluate (wall s / peak RSS GB)",
        [
            {
                "run": name,
                "train rows": run.get("train_rows_written", "-"),
                **{
                    step: f"{run[step]['wall_s']:.0f} / {run[step]['peak_rss_gb']:.2f}"
                    if step in run
                    else "-"
                    for step in ("preprocess", "train", "evaluate")
                },
                "test PR-AUC": run.get("test_metrics", {}).get("pr_auc", "-"),
            }
            for name, run in runs.items()
        ],
    )
    stamp = {"input": data, "num_round": args.num_round}
    runs = {name: {**run, **stamp} for name, run in runs.items()}
    kept = {}
    if args.keep_runs and (RESULTS_DIR / "fraud_training.json").is_file():
        kept = json.loads((RESULTS_DIR / "fraud_training.json").read_text()).get("runs", {})
    write_result(
        "fraud_training",
        {"baseline_commit": BASELINE_COMMIT, "runs": {**kept, **runs}},
    )


if __name__ == "__main__":
    main(sys.argv[1:])
