"""Local executor units on hand-written definitions (no SageMaker SDK needed)."""

from __future__ import annotations

import json

import pytest

from cdp.objectstore.local import FolderObjectStore
from pipelines.local import DefinitionError, LocalPipelineExecutor, UnsupportedStepError
from pipelines.local.conditions import evaluate
from pipelines.local.expressions import Resolver, path_tokens
from pipelines.local.graph import parse_steps, run_order
from tests.pipeline_support import RecordingRegistry


def _resolver(properties=None, files=None):
    resolver = Resolver(
        {"Min": 0.5, "Name": "x"},
        {"PipelineExecutionId": "abc123"},
        read_property_file=lambda step, name: files[(step, name)],
        read_json_uri=lambda uri: {},
    )
    resolver.step_properties.update(properties or {})
    return resolver


def test_property_paths_select_list_items_by_name_and_index():
    assert path_tokens("ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri") == [
        "ProcessingOutputConfig",
        "Outputs",
        "train",
        "S3Output",
        "S3Uri",
    ]
    props = {
        "ProcessingOutputConfig": {
            "Outputs": [
                {"OutputName": "a", "S3Output": {"S3Uri": "s3://b/a"}},
                {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/t"}},
            ]
        }
    }
    resolver = _resolver({"Prep": props})
    assert (
        resolver.resolve({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"})
        == "s3://b/t"
    )
    assert (
        resolver.resolve({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs[0].S3Output.S3Uri"}) == "s3://b/a"
    )
    with pytest.raises(DefinitionError, match="no item named 'nope'"):
        resolver.resolve({"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['nope'].S3Output.S3Uri"})


def test_join_and_json_get_and_parameters():
    files = {("Eval", "Report"): {"metrics": {"auc": {"value": 0.8}}, "list": [1, 2]}}
    resolver = _resolver(files=files)
    join = {
        "Std:Join": {
            "On": "/",
            "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, {"Get": "Parameters.Name"}],
        }
    }
    assert resolver.resolve(join) == "s3://b/abc123/x"
    get = {
        "Std:JsonGet": {
            "PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"},
            "Path": "metrics.auc.value",
        }
    }
    assert resolver.resolve(get) == 0.8
    assert (
        resolver.resolve(
            {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.Report"}, "Path": "list[1]"}}
        )
        == 2
    )
    with pytest.raises(DefinitionError, match="no such pipeline parameter"):
        resolver.resolve({"Get": "Parameters.Missing"})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"Type": "GreaterThanOrEqualTo", "LeftValue": 0.5, "RightValue": {"Get": "Parameters.Min"}}, True),
        ({"Type": "GreaterThan", "LeftValue": 0.5, "RightValue": {"Get": "Parameters.Min"}}, False),
        ({"Type": "LessThanOrEqualTo", "LeftValue": "0.4", "RightValue": 0.5}, True),
        ({"Type": "Equals", "LeftValue": {"Get": "Parameters.Name"}, "RightValue": "x"}, True),
        ({"Type": "In", "QueryValue": "x", "Values": ["a", "x"]}, True),
        ({"Type": "Not", "Condition": {"Type": "LessThan", "LeftValue": 1, "RightValue": 2}}, False),
        (
            {
                "Type": "Or",
                "Conditions": [
                    {"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                    {"Type": "Equals", "LeftValue": 2, "RightValue": 2},
                ],
            },
            True,
        ),
    ],
)
def test_conditions(condition, expected):
    assert evaluate(condition, _resolver(), "test") is expected


def _processing(name, script_uri, args=(), outputs=(), cache=False, depends=()):
    step = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "img",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/s.py"],
                "ContainerArguments": list(args),
            },
            "ProcessingInputs": [
                {
                    "InputName": "code",
                    "S3Input": {
                        "S3Uri": script_uri,
                        "LocalPath": "/opt/ml/processing/input/code",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            "ProcessingOutputConfig": {
                "Outputs": [
                    {
                        "OutputName": o,
                        "S3Output": {
                            "S3Uri": f"s3://bkt/out/{o}",
                            "LocalPath": f"/opt/ml/processing/output/{o}",
                        },
                    }
                    for o in outputs
                ]
            },
        },
    }
    if cache:
        step["CacheConfig"] = {"Enabled": True, "ExpireAfter": "P1D"}
    if depends:
        step["DependsOn"] = list(depends)
    return step


@pytest.fixture
def store(tmp_path):
    return FolderObjectStore(tmp_path / "lake", fsync=False)


def _executor(store, tmp_path, registry=None):
    return LocalPipelineExecutor(
        store,
        query_to_files=lambda sql, destination: None,
        register=(registry or RecordingRegistry()).register,
        work_dir=tmp_path / "work",
    )


def test_unsupported_step_types_fail_before_anything_runs(store, tmp_path):
    store.put_bytes("s3://bkt/code/s.py", b"open('ran', 'w').write('1')\n")
    definition = {
        "Parameters": [],
        "Steps": [
            _processing("Prep", "s3://bkt/code/s.py"),
            {"Name": "Deploy", "Type": "Lambda", "Arguments": {}},
        ],
    }
    with pytest.raises(UnsupportedStepError, match=r"Deploy \(Lambda\)"):
        _executor(store, tmp_path).run(definition, pipeline_name="p")
    assert not (tmp_path / "work" / "runs").exists()


def test_cycles_and_unknown_parameters_are_definition_errors(store, tmp_path):
    a = _processing("A", "s3://bkt/code/s.py", depends=["B"])
    b = _processing("B", "s3://bkt/code/s.py", depends=["A"])
    with pytest.raises(DefinitionError, match="dependency cycle"):
        run_order(parse_steps({"Steps": [a, b]}))
    with pytest.raises(DefinitionError, match="unknown pipeline parameter"):
        _executor(store, tmp_path).run(
            {"Parameters": [], "Steps": []}, pipeline_name="p", parameters={"X": 1}
        )


def test_script_failure_fails_the_run_and_keeps_the_log(store, tmp_path):
    store.put_bytes("s3://bkt/code/s.py", b"import sys\nprint('about to fail')\nsys.exit(3)\n")
    after = _processing("After", "s3://bkt/code/s.py", depends=["Prep"])
    definition = {"Parameters": [], "Steps": [_processing("Prep", "s3://bkt/code/s.py"), after]}
    record = _executor(store, tmp_path).run(definition, pipeline_name="p")
    assert record.status == "Failed"
    assert (
        record.step("Prep").status == "Failed" and "exited with code 3" in record.step("Prep").failure_reason
    )
    assert record.step("After").status == "NotExecuted"
    assert "about to fail" in open(record.step("Prep").log).read()


def test_container_paths_map_to_the_step_folder_and_outputs_upload(store, tmp_path):
    script = (
        b"import os, sys, pathlib\n"
        b"root = pathlib.Path(os.environ['CDP_OPT_ML_ROOT'])\n"
        b"out = pathlib.Path(sys.argv[1])\n"
        b"assert out == root / 'processing/output/result', out\n"
        b"(out / 'r.txt').write_text(sys.argv[2])\n"
    )
    store.put_bytes("s3://bkt/code/s.py", script)
    definition = {
        "Parameters": [{"Name": "Word", "Type": "String", "DefaultValue": "hello"}],
        "Steps": [
            _processing(
                "Prep",
                "s3://bkt/code/s.py",
                args=["/opt/ml/processing/output/result", {"Get": "Parameters.Word"}],
                outputs=["result"],
                cache=True,
            )
        ],
    }
    executor = _executor(store, tmp_path)
    record = executor.run(definition, pipeline_name="p", parameters={"Word": "bonjour"})
    assert record.status == "Succeeded", record.failure_reason
    assert store.get_bytes("s3://bkt/out/result/r.txt") == b"bonjour"
    again = executor.run(definition, pipeline_name="p", parameters={"Word": "bonjour"})
    other = executor.run(definition, pipeline_name="p", parameters={"Word": "hallo"})
    assert again.step("Prep").cache_hit is True
    assert other.step("Prep").cache_hit is False and store.get_bytes("s3://bkt/out/result/r.txt") == b"hallo"
    saved = json.loads((executor.run_dir(other.execution_id) / "run.json").read_text())
    assert saved["parameters"] == {"Word": "hallo"} and saved["steps"][0]["status"] == "Succeeded"
