"""End to end: each model's definition (built offline with the SDK) runs on the local executor."""

from __future__ import annotations

import json

import pytest

from cdp.catalog.local import DuckDbCatalog
from cdp.objectstore.local import FolderObjectStore
from pipelines.local import LocalPipelineExecutor
from pipelines.models import spec_of
from tests.pipeline_support import BUCKET, RecordingRegistry, build, generate_lake

GATE_METRIC = {"fraud": "pr_auc", "clv": "rmse_ratio_to_heuristic", "segmentation": "silhouette"}


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipelines-e2e")
    store = FolderObjectStore(root / "lake", fsync=False)
    catalog = DuckDbCatalog(root / "catalog.json", resolve=store.local_path)
    generate_lake(store, catalog)
    definitions = {model: build(model, store) for model in ("fraud", "clv", "segmentation")}
    return root, store, catalog, definitions


def _failure(record) -> str:
    """Which step failed and why, with the tail of its log, for an assertion message."""
    lines = [str(record.failure_reason)]
    for step in record.steps:
        lines.append(f"{step.name}: {step.status} {step.failure_reason or ''}")
        if step.status == "Failed" and step.log:
            with open(step.log) as log:
                lines.append(log.read()[-3000:])
    return "\n".join(lines)


def _executor(lake, registry, work="work"):
    root, store, catalog, _ = lake
    return LocalPipelineExecutor(
        store, query_to_files=catalog.query_to_files, register=registry.register, work_dir=root / work
    )


@pytest.mark.parametrize("model", ["fraud", "clv", "segmentation"])
def test_definition_runs_end_to_end_and_registers_pending_model(lake, model):
    _, store, _, definitions = lake
    registry = RecordingRegistry()
    executor = _executor(lake, registry, work=f"work-{model}")
    record = executor.run(definitions[model], pipeline_name=spec_of(model).pipeline_name)

    assert record.status == "Succeeded", _failure(record)
    statuses = {s.name: s.status for s in record.steps}
    assert statuses == {
        "Preprocess": "Succeeded",
        "Train": "Succeeded",
        "Evaluate": "Succeeded",
        "Gate": "Succeeded",
        "Register": "Succeeded",
        "Fail": "NotExecuted",
    }
    assert record.step("Gate").outcome == "if"
    assert [s.name for s in record.steps].index("Train") < [s.name for s in record.steps].index("Evaluate")

    (entry,) = registry.entries
    assert entry["model_name"] == f"cdp-{model}"
    assert entry["approval_status"] == "PendingManualApproval"
    assert entry["version"] == 1
    assert GATE_METRIC[model] in entry["metrics"]
    assert entry["artifacts_uri"].startswith(f"s3://{BUCKET}/pipelines/{model}/models/")
    assert entry["artifacts_uri"].endswith("/output/model.tar.gz") and store.exists(entry["artifacts_uri"])
    assert entry["lineage"]["execution_id"] == record.execution_id
    register = record.step("Register").properties
    assert register["ModelPackageArn"].endswith(f"/cdp-{model}/1")

    # Outputs land under the execution id; the run record and step logs are on disk.
    train_split = record.step("Preprocess").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"][
        "S3Uri"
    ]
    assert record.execution_id in train_split and any(True for _ in store.list(train_split + "/"))
    saved = json.loads((executor.run_dir(record.execution_id) / "run.json").read_text())
    assert saved["status"] == "Succeeded" and len(saved["steps"]) == 6
    assert all(s["duration_seconds"] is not None for s in saved["steps"] if s["status"] == "Succeeded")
    preprocess_log = open(record.step("Preprocess").log).read()
    assert record.step("Train").log is not None
    if model == "fraud":
        assert "rows=3000" in preprocess_log


def test_hyperparameters_reach_the_training_script(lake):
    _, store, _, definitions = lake
    registry = RecordingRegistry()
    record = _executor(lake, registry, work="work-hp").run(definitions["fraud"], pipeline_name="cdp-fraud")
    import io
    import tarfile

    assert record.status == "Succeeded", _failure(record)
    archive = store.get_bytes(registry.entries[0]["artifacts_uri"])
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model["hyperparameters"] == {"max_depth": 6, "eta": 0.1}


def test_second_run_hits_the_cache_and_registers_a_new_version(lake):
    registry = RecordingRegistry()
    executor = _executor(lake, registry, work="work-cache")
    definition = lake[3]["clv"]
    first = executor.run(definition, pipeline_name="cdp-clv")
    second = executor.run(definition, pipeline_name="cdp-clv")

    assert first.status == second.status == "Succeeded", (first.failure_reason, second.failure_reason)
    assert [s.cache_hit for s in first.steps if s.type in ("Processing", "Training")] == [False, False, False]
    assert [s.cache_hit for s in second.steps if s.type in ("Processing", "Training")] == [True, True, True]
    assert [e["version"] for e in registry.entries] == [1, 2]
    assert registry.entries[0]["artifacts_uri"] == registry.entries[1]["artifacts_uri"]


def test_cache_misses_when_the_lake_data_changes(lake, tmp_path):
    root, store, catalog, definitions = lake
    registry = RecordingRegistry()
    executor = LocalPipelineExecutor(
        store, query_to_files=catalog.query_to_files, register=registry.register, work_dir=tmp_path
    )
    executor.run(definitions["segmentation"], pipeline_name="cdp-segmentation")
    changed = LocalPipelineExecutor(
        store,
        query_to_files=lambda sql, to: catalog.query_to_files(sql + " WHERE customer_id % 7 <> 0", to),
        register=registry.register,
        work_dir=tmp_path,
    )
    record = changed.run(definitions["segmentation"], pipeline_name="cdp-segmentation")
    assert record.status == "Succeeded"
    assert record.step("Preprocess").cache_hit is False


def test_gate_failure_takes_the_fail_branch_with_a_readable_message(lake):
    registry = RecordingRegistry()
    record = _executor(lake, registry, work="work-fail").run(
        lake[3]["fraud"], pipeline_name="cdp-fraud", parameters={"MinPrAuc": 0.999}
    )
    assert record.status == "Failed"
    assert record.step("Gate").outcome == "else", [
        (st.name, st.status, st.failure_reason) for st in record.steps
    ]
    assert record.step("Register").status == "NotExecuted"
    assert record.step("Fail").status == "Failed"
    assert "The fraud model did not pass its quality gate: pr_auc = 0." in record.failure_reason
    assert "(required >= 0.999 )" in record.failure_reason
    assert registry.entries == []


def test_run_pipeline_parameters_size_the_jobs_and_several_instances_run_as_one_locally(lake):
    """`--parameter` overrides reach the jobs' resources (and Preprocess's file count); the local executor
    runs a count > 1 definition on one instance, with every shard."""
    _, _, _, definitions = lake
    registry = RecordingRegistry()
    overrides = {
        "TrainingInstanceCount": "2",
        "TrainingInstanceType": "ml.m5.2xlarge",
        "ProcessingInstanceCount": "2",
    }
    record = _executor(lake, registry, work="work-sized").run(
        definitions["fraud"], pipeline_name="cdp-fraud", parameters=overrides
    )
    assert record.status == "Succeeded", _failure(record)
    train = record.step("Train").properties
    assert train["ResourceConfig"]["InstanceCount"] == 2
    assert train["ResourceConfig"]["InstanceType"] == "ml.m5.2xlarge"
    (channel,) = [c for c in train["InputDataConfig"] if c["ChannelName"] == "train"]
    assert channel["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "ShardedByS3Key"
    preprocess = record.step("Preprocess").properties
    assert preprocess["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == 2
    assert preprocess["AppSpecification"]["ContainerArguments"][-2:] == ["--files-per-split", "2"]
    assert len(registry.entries) == 1
