"""The fraud model's step scripts (training/fraud/) on a small generated lake: the pipeline definition runs
them under the step-script contract on the local executor, the booster loads with its feature names, the
evaluation has the gate metrics, plots and card; the model beats the raw-columns baseline; same seed, same
metrics. Plus the preprocess and metric rules on small frames."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from bench.bench_models import compare_on_test, fraud_training_set, load_lake, register_training_set
from cdp.backends import Backends
from cdp.registry.scoring import BoosterModel
from cdp.settings import Settings
from cdp.synth.generator import generate
from pipelines.spec import TRAINING_DIR
from training.fraud import evaluate, preprocess, train

USERS, SEED, START = 30, 11, date(2015, 1, 1)
SCRIPTS = TRAINING_DIR / "fraud"
GATE_METRICS = ("pr_auc", "pr_auc_lift_over_baseline")
REPORTED = ("roc_auc", "recall_at_budget", "precision_at_budget")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("fraud-lake")
    source = root / "ibm"
    generate(source, users=USERS, seed=SEED, start=START, workers=1)
    backends = Backends(Settings(home=root / "home"))
    load_lake(source, backends)
    training_set = fraud_training_set(backends)
    register_training_set(backends, training_set)
    return root, source, backends, training_set


@pytest.fixture(scope="module")
def pipeline_run(lake):
    """The fraud pipeline definition (built offline over training/fraud/) run by the local executor."""
    from pipelines.definition import build_definition
    from pipelines.local import LocalPipelineExecutor
    from tests.pipeline_support import PROCESSING_IMAGE, REGION, ROLE, TRAINING_IMAGE, RecordingRegistry

    root, _, backends, _ = lake
    definition = build_definition(
        "fraud",
        bucket=backends.settings.lake_bucket,
        region=REGION,
        role=ROLE,
        scripts_dir=SCRIPTS,
        object_store=backends.object_store,
        processing_image=PROCESSING_IMAGE,
        training_image=TRAINING_IMAGE,
    )
    registry = RecordingRegistry()
    executor = LocalPipelineExecutor(
        backends.object_store,
        query_to_files=backends.catalog.query_to_files,
        register=registry.register,
        work_dir=root / "work",
    )
    record = executor.run(definition, pipeline_name="cdp-fraud")
    return record, registry, executor


@pytest.fixture(scope="module")
def comparison(lake):
    root, source, backends, training_set = lake
    return compare_on_test(source, backends, training_set, root / "comparison")


def _evaluation_folder(record) -> str:
    outputs = record.step("Evaluate").properties["ProcessingOutputConfig"]["Outputs"]
    return outputs[0]["S3Output"]["S3Uri"].rstrip("/")


def _evaluation(record, backends) -> dict:
    return json.loads(backends.object_store.get_bytes(f"{_evaluation_folder(record)}/evaluation.json"))


def test_pipeline_runs_the_scripts_and_registers_a_booster_with_its_feature_names(lake, pipeline_run):
    root, _, backends, training_set = lake
    record, registry, executor = pipeline_run
    assert record.status == "Succeeded", record.failure_reason
    (entry,) = registry.entries
    assert entry["approval_status"] == "PendingManualApproval"

    model_dir = root / "registered-model"
    with tarfile.open(fileobj=io.BytesIO(backends.object_store.get_bytes(entry["artifacts_uri"]))) as tar:
        tar.extractall(model_dir, filter="data")
    assert sorted(p.name for p in model_dir.iterdir()) == ["features.json", "model.ubj"]
    document = json.loads((model_dir / "features.json").read_text())
    model = BoosterModel.load(model_dir)  # what the registry and serving load
    assert model.objective == "binary:logistic"
    assert list(model.features) == document["features"]
    assert not set(model.features) & {"txn_id", "event_seq", "ts", "is_fraud", "label", "split"}
    assert "amount_cents" in model.features and "is_new_merchant" in model.features
    assert "mcc_group" not in model.features and "mcc_group__travel" in model.features
    assert document["one_hot"]["mcc_group"] == sorted(document["one_hot"]["mcc_group"])
    assert document["training"]["best_iteration"] < document["training"]["rounds_trained"] <= 300
    assert document["training"]["best_iteration"] >= min(100, document["training"]["rounds_trained"]) - 1
    assert document["hyperparameters"]["max_depth"] == 6 and document["hyperparameters"]["seed"] == 7

    # The time split survived: every train row precedes every validation row, which precede the test rows.
    frame = training_set.to_pandas()
    times = {name: frame.loc[frame["split"] == name, "ts"] for name in preprocess.SPLITS}
    assert times["train"].max() < times["validation"].min() <= times["validation"].max() < times["test"].min()
    preprocess_log = Path(record.step("Preprocess").log).read_text()
    assert f"rows={len(frame)}" in preprocess_log
    for name in preprocess.SPLITS:
        assert f"{name}={int((frame['split'] == name).sum())}/" in preprocess_log


def test_evaluation_writes_gate_metrics_plots_and_model_card(lake, pipeline_run):
    _, _, backends, training_set = lake
    record, registry, _ = pipeline_run
    folder = _evaluation_folder(record)
    names = {o.uri.rsplit("/", 1)[-1] for o in backends.object_store.list(folder + "/")}
    assert {"evaluation.json", "model_card.md", *evaluate.PLOTS.values()} <= names
    for plot in evaluate.PLOTS.values():
        assert backends.object_store.get_bytes(f"{folder}/{plot}")[:8] == b"\x89PNG\r\n\x1a\n"

    report = _evaluation(record, backends)
    metrics = {name: entry["value"] for name, entry in report["metrics"].items()}
    for name in (*GATE_METRICS, *REPORTED):
        assert 0 < metrics[name], name
    frame = training_set.to_pandas()
    test = frame[frame["split"] == "test"]
    assert metrics["test_rows"] == len(test) and metrics["test_frauds"] == int(test["label"].sum())
    assert metrics["base_rate"] == pytest.approx(test["label"].mean())
    assert metrics["pr_auc_lift_over_baseline"] == pytest.approx(metrics["pr_auc"] / metrics["base_rate"])
    assert metrics["alerts"] == evaluate.alert_count(len(test))
    assert metrics["pr_auc"] > 5 * metrics["base_rate"]  # far better than a random ranking
    assert report["shap_sample_rows"] <= evaluate.SHAP_SAMPLE_ROWS
    assert 0 < len(report["shap_mean_abs"]) <= evaluate.SHAP_TOP_FEATURES
    # The registered version carries the gate metrics (the gate passed on them).
    assert registry.entries[0]["metrics"]["pr_auc"] == pytest.approx(metrics["pr_auc"])
    assert record.step("Gate").outcome == "if"

    card = backends.object_store.get_bytes(f"{folder}/model_card.md").decode()
    assert card.startswith("# Model card: fraud")
    assert f"{metrics['pr_auc']:.4f}" in card and "## Limitations" in card


def test_model_beats_the_raw_columns_baseline_and_stays_below_the_oracle(comparison):
    results = comparison["results"]
    model, raw, oracle = results["model"], results["raw_baseline"], results["oracle"]
    assert model["test_rows"] == raw["test_rows"] == oracle["test_rows"]  # the same test rows
    assert model["pr_auc"] > raw["pr_auc"]
    assert model["roc_auc"] > raw["roc_auc"]
    assert model["pr_auc"] < oracle["pr_auc"] * 1.1  # the oracle is the ceiling (small-sample slack)
    assert comparison["ratios"]["pr_auc_vs_raw_baseline"] == pytest.approx(model["pr_auc"] / raw["pr_auc"])


def test_same_seed_same_model_and_metrics(comparison, pipeline_run, lake):
    """The executor's run (scripts in subprocesses) and the in-process run agree exactly, and a second
    training on the same rows gives the same predictions."""
    record, _, _ = pipeline_run
    _, _, backends, training_set = lake
    pipeline_metrics = _evaluation(record, backends)["metrics"]
    for name in (*GATE_METRICS, *REPORTED):
        assert comparison["evaluation_json_metrics"][name] == pytest.approx(
            pipeline_metrics[name]["value"], rel=1e-12
        )
    parts, spec = preprocess.split_frames(training_set.to_pandas())
    args = train.parse_hyperparameters(["--num_round", "40", "--seed", "3"])
    first, _ = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    second, _ = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    a = evaluate.predict(first, parts["test"], spec["features"])
    b = evaluate.predict(second, parts["test"], spec["features"])
    assert np.array_equal(a, b)
    labels = parts["test"]["is_fraud"].to_numpy()
    assert evaluate.fraud_metrics(labels, a) == evaluate.fraud_metrics(labels, b)


# -- rules on small frames --------------------------------------------------------------------------------


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "txn_id": ["t1", "t2", "t3", "t4", "t5", "t6"],
            "event_seq": [2, 3, 4, 5, 6, 7],
            "ts": pd.to_datetime(
                ["2019-01-02", "2019-01-01", "2019-02-01", "2019-02-02", "2019-03-01", "2019-03-02"]
            ),
            "card_token": ["c"] * 6,
            "year": [2019] * 6,
            "month": [1, 1, 2, 2, 3, 3],
            "split": ["train", "train", "validation", "validation", "test", "test"],
            "label": [False, True, False, True, True, False],
            "amount_cents": [100, 200, None, 400, 500, 600],
            "is_online": [True, False, True, False, True, False],
            "mcc_group": ["grocery", "travel", "grocery", "dining", "dining", None],
        }
    )


def test_preprocess_splits_by_the_split_column_and_encodes_features():
    parts, spec = preprocess.split_frames(_frame())
    assert spec["features"] == ["amount_cents", "is_online", "mcc_group__grocery", "mcc_group__travel"]
    assert spec["one_hot"] == {"mcc_group": ["grocery", "travel"]}  # the train split's values only
    assert list(parts["train"]["txn_id"]) == ["t2", "t1"]  # time order
    assert list(parts["validation"]["txn_id"]) == ["t3", "t4"]
    assert list(parts["test"]["txn_id"]) == ["t5", "t6"]
    assert list(parts["train"].columns) == [
        "txn_id",
        "event_seq",
        "ts",
        "is_fraud",
        "sample_weight",
        *spec["features"],
    ]
    assert list(parts["test"].columns) == ["txn_id", "event_seq", "ts", "is_fraud", *spec["features"]]
    assert list(parts["train"]["sample_weight"]) == [1.0, 1.0]  # nothing down-sampled by default
    assert list(parts["train"]["is_fraud"]) == [1, 0]
    assert np.isnan(parts["validation"]["amount_cents"].iloc[0])  # missing stays missing
    assert list(parts["validation"]["mcc_group__grocery"]) == [1.0, 0.0]
    assert parts["test"][["mcc_group__grocery", "mcc_group__travel"]].to_numpy().sum() == 0  # unseen / null
    assert all(parts["test"][f].dtype == np.float32 for f in spec["features"])
    assert spec["rows"] == {"train": 2, "validation": 2, "test": 2}
    assert spec["frauds"] == {"train": 1, "validation": 1, "test": 1}
    # the training-set table may name its label `is_fraud` or (as the feature view does) `label`
    renamed, same_spec = preprocess.split_frames(_frame().rename(columns={"label": "is_fraud"}))
    assert same_spec == spec and all(renamed[n].equals(parts[n]) for n in preprocess.SPLITS)


def _months_frame(rows_per_month: int = 400, seed: int = 3) -> pd.DataFrame:
    """Six months of rows (train: 4, validation: 1, test: 1), about 2% fraud."""
    rng = np.random.default_rng(seed)
    n = 6 * rows_per_month
    ts = pd.Timestamp("2019-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 181 * 86_400, n)), unit="s")
    month = ts.month
    return pd.DataFrame(
        {
            "txn_id": [f"t{i:05d}" for i in range(n)],
            "event_seq": np.arange(n),
            "ts": ts,
            "year": ts.year,
            "month": month,
            "split": np.where(month <= 4, "train", np.where(month == 5, "validation", "test")),
            "label": rng.random(n) < 0.02,
            "amount_cents": rng.integers(100, 10_000, n),
            "mcc_group": rng.choice(["grocery", "travel", "dining"], n),
        }
    )


def test_unordered_input_is_written_in_time_order_month_by_month():
    frame = _months_frame()
    ordered, spec = preprocess.split_frames(frame)
    shuffled, shuffled_spec = preprocess.split_frames(
        frame.sample(frac=1.0, random_state=5), negative_sample_rate=1
    )
    assert spec["input_in_time_order"] and not shuffled_spec["input_in_time_order"]
    for name in preprocess.SPLITS:
        pd.testing.assert_frame_equal(shuffled[name], ordered[name])
        assert shuffled[name]["ts"].is_monotonic_increasing


def test_negative_down_sampling_keeps_every_fraud_and_weights_the_genuine_rows():
    frame = _months_frame(rows_per_month=2_000)
    full, _ = preprocess.split_frames(frame)
    parts, spec = preprocess.split_frames(frame, negative_sample_rate=0.25, seed=11)
    train = parts["train"]
    assert spec["negative_sample_rate"] == 0.25
    assert int(train["is_fraud"].sum()) == int(full["train"]["is_fraud"].sum())  # every fraud kept
    genuine = train[train["is_fraud"] == 0]
    assert set(genuine["sample_weight"]) == {4.0} and set(
        train.loc[train["is_fraud"] == 1, "sample_weight"]
    ) == {1.0}
    full_genuine = int((full["train"]["is_fraud"] == 0).sum())
    assert abs(len(genuine) - full_genuine / 4) < 4 * np.sqrt(full_genuine * 0.25 * 0.75)
    assert (
        abs(genuine["sample_weight"].sum() - full_genuine) < 0.1 * full_genuine
    )  # weights restore the count
    # every month down-sampled on its own; validation and test untouched
    kept = (
        train.groupby(train["ts"].dt.month).size()
        / full["train"].groupby(full["train"]["ts"].dt.month).size()
    )
    assert kept.between(0.15, 0.35).all()
    for name in ("validation", "test"):
        assert parts[name].equals(full[name]) and "sample_weight" not in parts[name].columns
    assert spec["rows"] == {n: len(full[n]) for n in preprocess.SPLITS}  # the input's counts
    assert spec["written_rows"]["train"] == len(train)
    # seeded: the same rows again, whatever the input order and batch size; another seed, other rows
    again, _ = preprocess.split_frames(
        frame.sample(frac=1.0, random_state=2), negative_sample_rate=0.25, seed=11
    )
    pd.testing.assert_frame_equal(again["train"], train)
    other, _ = preprocess.split_frames(frame, negative_sample_rate=0.25, seed=12)
    assert not other["train"]["txn_id"].equals(train["txn_id"])
    with pytest.raises(preprocess.PreprocessError, match="negative sample rate"):
        preprocess.split_frames(frame, negative_sample_rate=0)


def test_auto_sample_rate_keeps_everything_up_to_the_budget():
    budget = preprocess.AUTO_MAX_TRAIN_NEGATIVES
    assert preprocess.resolve_sample_rate("auto", budget // 2) == 1.0
    assert preprocess.resolve_sample_rate("auto", budget * 4) == 0.25
    assert preprocess.resolve_sample_rate("0.5", 10) == 0.5


def test_preprocess_script_streams_batches_into_the_same_splits(tmp_path):
    """The step (Parquet in, small batches, several input files) writes what the in-memory path gives."""
    frame = _months_frame()
    features = tmp_path / "processing/input/features"
    features.mkdir(parents=True)
    shuffled = frame.sample(frac=1.0, random_state=9)
    shuffled.iloc[:1000].to_parquet(features / "part-0.parquet", index=False)
    shuffled.iloc[1000:].to_parquet(features / "part-1.parquet", index=False)
    env = {**os.environ, "CDP_OPT_ML_ROOT": str(tmp_path)}
    done = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "preprocess.py"),
            "--negative-sample-rate",
            "0.5",
            "--batch-rows",
            "97",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    expected, spec = preprocess.split_frames(frame, negative_sample_rate=0.5)
    written = json.loads((tmp_path / "processing/output/train/feature_spec.json").read_text())
    assert written["features"] == spec["features"] and written["written_rows"] == spec["written_rows"]
    for name in preprocess.SPLITS:
        got = pd.read_parquet(tmp_path / f"processing/output/{name}/{name}.parquet")
        pd.testing.assert_frame_equal(got, expected[name])


def test_row_draws_are_a_seeded_hash_of_the_row_key_whatever_the_order():
    """Each row's draw depends on its key and the seed only: the same in any order or batch, uniform."""
    table = pa.Table.from_pandas(_months_frame(rows_per_month=2_000), preserve_index=False)
    draws = dict(zip(table["txn_id"].to_pylist(), preprocess.row_draws(table, 7), strict=True))
    shuffled = table.take(np.random.default_rng(1).permutation(table.num_rows))
    for batch in shuffled.to_batches(max_chunksize=1_000):
        again = preprocess.row_draws(batch, 7)
        assert list(again) == [draws[t] for t in batch.column("txn_id").to_pylist()]
    values = np.array(list(draws.values()))
    assert ((values >= 0) & (values < 1)).all() and abs(values.mean() - 0.5) < 0.02
    assert abs((values < 0.25).mean() - 0.25) < 0.02
    assert not np.array_equal(preprocess.row_draws(table, 8), preprocess.row_draws(table, 7))
    # without an integer `event_seq`, the text key: still order-free and uniform
    by_text = table.drop_columns(["event_seq"])
    text_draws = preprocess.row_draws(by_text, 7)
    reversed_draws = preprocess.row_draws(by_text.take(np.arange(by_text.num_rows)[::-1]), 7)
    assert np.array_equal(text_draws, reversed_draws[::-1]) and abs(text_draws.mean() - 0.5) < 0.02


def test_files_are_read_in_numeric_name_order_so_an_ordered_result_stays_in_order(tmp_path):
    """An engine result of many files (`data_0` ... `data_11`) read in name order by value: in time
    order, so the step writes it as it comes, without the month-by-month sort."""
    frame = _months_frame()
    pieces = np.array_split(np.arange(len(frame)), 12)
    for i, rows in enumerate(pieces):
        frame.iloc[rows].to_parquet(tmp_path / f"data_{i}.parquet", index=False)
    folder = preprocess.ParquetFolder(tmp_path, batch_rows=100)
    assert [p.name for p in folder.files][:3] == ["data_0.parquet", "data_1.parquet", "data_2.parquet"]
    found = preprocess.scan(folder, "label")
    assert all(found.in_order.values()) and found.input_rows == len(frame)


def test_training_from_parquet_chunks_equals_training_from_the_frame(tmp_path, monkeypatch):
    """The step's chunked Parquet reading builds the same matrix as the in-process frame: same model."""
    parts, spec = preprocess.split_frames(_months_frame(), negative_sample_rate=0.5)
    monkeypatch.setattr(train, "CHUNK_ROWS", 300)  # several chunks, not aligned with the files
    folders = {}
    for name in ("train", "validation"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        half = len(parts[name]) // 3
        parts[name].iloc[:half].to_parquet(folders[name] / "a.parquet", index=False)
        parts[name].iloc[half:].to_parquet(folders[name] / "b.parquet", index=False)
    args = train.parse_hyperparameters(["--num_round", "20", "--min_rounds", "5"])
    from_frames, summary = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    from_files, file_summary = train.train_booster(
        train.ParquetRows(folders["train"]), train.ParquetRows(folders["validation"]), spec["features"], args
    )
    assert summary == file_summary
    assert summary["train_genuine_weight"] == pytest.approx(
        parts["train"]["sample_weight"][parts["train"]["is_fraud"] == 0].sum()
    )
    a = evaluate.predict(from_frames, parts["test"], spec["features"])
    b = evaluate.predict(from_files, parts["test"], spec["features"])
    assert np.array_equal(a, b)


def test_preprocess_script_fails_on_bad_input_without_echoing_values(tmp_path):
    features = tmp_path / "processing/input/features"
    features.mkdir(parents=True)
    frame = _frame()
    frame.loc[0, "split"] = "holdout-4111111111111111"
    frame.to_parquet(features / "query-result.parquet")
    env = {**os.environ, "CDP_OPT_ML_ROOT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "preprocess.py")], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "column 'split'" in done.stderr and "4111111111111111" not in done.stderr + done.stdout
    with pytest.raises(preprocess.PreprocessError, match="no 'split' column"):
        preprocess.split_frames(_frame().drop(columns="split"))


def test_fraud_metrics_count_alerts_on_the_top_of_the_ranking():
    labels = np.array([1, 0, 0, 1] + [0] * 396)
    scores = np.linspace(1.0, 0.0, 400)  # rows 0 and 3 are frauds, ranked 1st and 4th
    m = evaluate.fraud_metrics(labels, scores, budget=0.005)  # 2 alerts
    assert m["alerts"] == 2 and m["recall_at_budget"] == 0.5 and m["precision_at_budget"] == 0.5
    assert m["base_rate"] == 2 / 400
    assert m["pr_auc"] == pytest.approx((1 / 1 + 2 / 4) / 2)
    assert m["pr_auc_lift_over_baseline"] == pytest.approx(m["pr_auc"] / (2 / 400))
    assert m["alert_threshold"] == pytest.approx(scores[1])
    with pytest.raises(evaluate.EvaluationError):
        evaluate.fraud_metrics(np.zeros(10), np.ones(10))


def test_auto_class_weight_is_the_square_root_of_the_imbalance():
    labels = np.array([1] * 10 + [0] * 9_990)
    assert train.positive_weight(labels, "auto") == pytest.approx(np.sqrt(999))
    assert train.positive_weight(labels, "1") == 1.0


def test_step_scripts_import_only_what_the_sagemaker_images_have():
    import ast

    allowed = {"numpy", "pandas", "pyarrow", "xgboost", "sklearn", "matplotlib", "__future__"}
    for script in ("preprocess.py", "train.py", "evaluate.py"):
        tree = ast.parse((SCRIPTS / script).read_text())
        imported = {
            name.split(".")[0]
            for node in ast.walk(tree)
            for name in (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or "."]
                if isinstance(node, ast.ImportFrom)
                else []
            )
        }
        third_party = {m for m in imported if m not in sys.stdlib_module_names}
        assert third_party <= allowed, (script, third_party - allowed)


def test_early_stopping_counts_from_the_minimum_rounds_and_picks_the_best_after_them():
    # validation PR-AUC peaks at round 3, dips, then climbs past it at round 60 and stalls
    curve = [0.5, 0.7, 0.8, 0.89, 0.85] + [0.86] * 50 + [0.87, 0.88, 0.89, 0.90, 0.905, 0.91] + [0.905] * 100
    stopping = train.EarlyStoppingAfter(min_rounds=20, patience=40)
    log: dict = {"validation": {"aucpr": []}}
    stopped_at = None
    for epoch, score in enumerate(curve):
        log["validation"]["aucpr"].append(score)
        if stopping.after_iteration(None, epoch, log):
            stopped_at = epoch
            break
    assert stopping.best_iteration == 60 and stopping.best_score == 0.91
    assert stopped_at == 100  # 40 rounds without improvement after the best
    early = train.EarlyStoppingAfter(min_rounds=1, patience=40)  # plain early stopping: the early peak
    log = {"validation": {"aucpr": []}}
    for epoch, score in enumerate(curve):
        log["validation"]["aucpr"].append(score)
        if early.after_iteration(None, epoch, log):
            break
    assert early.best_iteration == 3


def test_a_down_sampled_model_says_so_in_its_features_and_model_card(tmp_path):
    parts, spec = preprocess.split_frames(_months_frame(rows_per_month=1_000), negative_sample_rate=0.5)
    args = train.parse_hyperparameters(["--num_round", "10", "--min_rounds", "5"])
    booster, summary = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    train.save_model(tmp_path / "model", booster, spec, summary, args)
    document = json.loads((tmp_path / "model/features.json").read_text())
    assert document["negative_sample_rate"] == 0.5
    # "auto" class weight counts the genuine rows by their weights: as if nothing had been sampled
    genuine = parts["train"][parts["train"]["is_fraud"] == 0]
    frauds = int(parts["train"]["is_fraud"].sum())
    assert summary["scale_pos_weight"] == pytest.approx(np.sqrt(genuine["sample_weight"].sum() / frauds))
    (tmp_path / "test").mkdir()
    parts["test"].to_parquet(tmp_path / "test/test.parquet", index=False)
    evaluate.evaluate(tmp_path / "model", tmp_path / "test", tmp_path / "evaluation")
    card = (tmp_path / "evaluation/model_card.md").read_text()
    assert "down-sampled to 50.0%" in card and "weighted 2" in card
