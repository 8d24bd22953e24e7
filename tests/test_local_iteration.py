"""Iterating on a pipeline locally: why a step was not taken from the cache, and rerunning from a step."""

from __future__ import annotations

import pytest

from cdp.objectstore.local import FolderObjectStore
from pipelines.local import DefinitionError, LocalPipelineExecutor, NoSourceRunError
from pipelines.local.fingerprint import changed_parts, explain_miss, parameter_references, step_fingerprint
from tests.pipeline_support import RecordingRegistry

# Prep copies its data input to its output, with the Word parameter; Train reads Prep's output.
PREP = b"""import pathlib, sys, time
out, word, data = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
(out / 'prepared.txt').write_text(word + ':' + (data / 'rows.csv').read_text() + ':' + str(time.time_ns()))
"""
TRAIN = b"""import pathlib, sys
prepared = pathlib.Path(sys.argv[1]) / 'prepared.txt'
out = pathlib.Path(sys.argv[2])
(out / 'model.txt').write_text('model of ' + prepared.read_text())
"""


def _input(name, uri):
    return {
        "InputName": name,
        "S3Input": {
            "S3Uri": uri,
            "LocalPath": f"/opt/ml/processing/input/{name}",
            "S3DataType": "S3Prefix",
            "S3InputMode": "File",
        },
    }


def _output(step, name):
    uri = {
        "Std:Join": {"On": "/", "Values": ["s3://bkt/out", {"Get": "Execution.PipelineExecutionId"}, name]}
    }
    return {"OutputName": name, "S3Output": {"S3Uri": uri, "LocalPath": f"/opt/ml/processing/output/{name}"}}


def _step(name, code_uri, inputs, args, output):
    return {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "AppSpecification": {
                "ImageUri": "img",
                "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/s.py"],
                "ContainerArguments": args,
            },
            "ProcessingInputs": [_input("code", code_uri), *inputs],
            "ProcessingOutputConfig": {"Outputs": [_output(name, output)]},
        },
        "CacheConfig": {"Enabled": True, "ExpireAfter": "P30D"},
    }


PREPARED_URI = {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['prepared'].S3Output.S3Uri"}
DEFINITION = {
    "Parameters": [{"Name": "Word", "Type": "String", "DefaultValue": "hello"}],
    "Steps": [
        _step(
            "Prep",
            "s3://bkt/code/prep/s.py",
            [_input("data", "s3://bkt/data")],
            [
                "/opt/ml/processing/output/prepared",
                {"Get": "Parameters.Word"},
                "/opt/ml/processing/input/data",
            ],
            "prepared",
        ),
        _step(
            "Train",
            "s3://bkt/code/train/s.py",
            [_input("prepared", PREPARED_URI)],
            ["/opt/ml/processing/input/prepared", "/opt/ml/processing/output/model"],
            "model",
        ),
    ],
}


@pytest.fixture
def store(tmp_path):
    store = FolderObjectStore(tmp_path / "lake", fsync=False)
    store.put_bytes("s3://bkt/code/prep/s.py", PREP)
    store.put_bytes("s3://bkt/code/train/s.py", TRAIN)
    store.put_bytes("s3://bkt/data/rows.csv", b"1,2,3")
    return store


def _executor(store, tmp_path, lines, use_cache=True):
    return LocalPipelineExecutor(
        store,
        query_to_files=lambda sql, destination: None,
        register=RecordingRegistry().register,
        work_dir=tmp_path / "work",
        progress=lines.append,
        use_cache=use_cache,
    )


def _misses(lines):
    return [line for line in lines if ": not from the cache: " in line]


def _model(store, record):
    uri = record.step("Train").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    return store.get_bytes(f"{uri}/model.txt").decode()


def test_a_first_run_says_there_is_no_cached_run_and_a_second_run_says_nothing(store, tmp_path):
    lines: list[str] = []
    executor = _executor(store, tmp_path, lines)
    first = executor.run(DEFINITION, pipeline_name="p")
    assert first.status == "Succeeded", first.failure_reason
    assert _misses(lines) == [
        "Prep: not from the cache: no cached run of this step yet",
        "Train: not from the cache: no cached run of this step yet",
    ]
    assert first.step("Prep").cache_miss_reason == "no cached run of this step yet"
    lines.clear()
    second = executor.run(DEFINITION, pipeline_name="p")
    assert [s.cache_hit for s in second.steps] == [True, True]
    assert _misses(lines) == [] and second.step("Prep").cache_miss_reason is None


def test_a_changed_parameter_names_it_with_both_values(store, tmp_path):
    lines: list[str] = []
    executor = _executor(store, tmp_path, lines)
    first = executor.run(DEFINITION, pipeline_name="p")
    lines.clear()
    executor.run(DEFINITION, pipeline_name="p", parameters={"Word": "bonjour"})
    # Train reads Prep's new output: its input changed, not its own definition or parameters
    assert _misses(lines) == [
        "Prep: not from the cache: parameter Word changed"
        f' ("hello" -> "bonjour") (vs run {first.execution_id})',
        f"Train: not from the cache: input 'prepared' changed (vs run {first.execution_id})",
    ]


def test_changed_code_and_changed_input_data_are_told_apart(store, tmp_path):
    lines: list[str] = []
    executor = _executor(store, tmp_path, lines)
    first = executor.run(DEFINITION, pipeline_name="p")
    store.put_bytes("s3://bkt/code/train/s.py", TRAIN + b"# a comment\n")
    lines.clear()
    second = executor.run(DEFINITION, pipeline_name="p")
    assert second.step("Prep").cache_hit is True
    assert _misses(lines) == [f"Train: not from the cache: code changed (vs run {first.execution_id})"]
    store.put_bytes("s3://bkt/data/rows.csv", b"4,5,6")
    lines.clear()
    executor.run(DEFINITION, pipeline_name="p")
    assert _misses(lines)[0].startswith("Prep: not from the cache: input 'data' changed (vs run ")


def test_an_edited_definition_and_the_cache_off_are_told(store, tmp_path):
    lines: list[str] = []
    executor = _executor(store, tmp_path, lines)
    executor.run(DEFINITION, pipeline_name="p")
    edited = {**DEFINITION, "Steps": [dict(DEFINITION["Steps"][0]), DEFINITION["Steps"][1]]}
    edited["Steps"][0]["Arguments"] = {
        **DEFINITION["Steps"][0]["Arguments"],
        "Environment": {"THREADS": "2"},
    }
    lines.clear()
    executor.run(edited, pipeline_name="p")
    assert _misses(lines)[0].startswith(
        "Prep: not from the cache: definition of Environment changed (vs run "
    )
    lines.clear()
    _executor(store, tmp_path, lines, use_cache=False).run(DEFINITION, pipeline_name="p")
    assert _misses(lines) == [
        "Prep: not from the cache: the cache is off for this run",
        "Train: not from the cache: the cache is off for this run",
    ]


def test_rerun_from_a_step_reuses_the_upstream_outputs_of_the_latest_run(store, tmp_path):
    lines: list[str] = []
    executor = _executor(store, tmp_path, lines)
    older = executor.run(DEFINITION, pipeline_name="p", parameters={"Word": "old"})
    latest = executor.run(DEFINITION, pipeline_name="p", parameters={"Word": "new"})
    prepared_before = store.get_bytes(
        latest.step("Prep").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
        + "/prepared.txt"
    )
    store.put_bytes("s3://bkt/code/prep/s.py", b"raise SystemExit('Prep must not run again')\n")
    lines.clear()
    rerun = executor.run(DEFINITION, pipeline_name="p", from_step="Train")

    assert rerun.status == "Succeeded", rerun.failure_reason
    assert (rerun.from_step, rerun.source_execution_id) == ("Train", latest.execution_id)
    prep, train = rerun.step("Prep"), rerun.step("Train")
    assert prep.reused_from == latest.execution_id and prep.status == "Succeeded"
    assert prep.properties == latest.step("Prep").properties and older.execution_id not in str(
        prep.properties
    )
    assert not (executor.run_dir(rerun.execution_id) / "Prep").exists()  # nothing of Prep ran
    # the named step runs even though nothing it depends on changed (its cached entry would match)
    assert train.cache_hit is False and train.cache_miss_reason == "rerun from this step as asked"
    assert _model(store, rerun) == "model of " + prepared_before.decode()
    assert rerun.execution_id in str(train.properties)
    assert lines[0] == f"Prep: Succeeded (reused from run {latest.execution_id})"
    assert lines[1] == "Train: not from the cache: rerun from this step as asked"

    # a run from a step is itself a source for the next one
    again = executor.run(DEFINITION, pipeline_name="p", from_step="Train")
    assert again.source_execution_id == rerun.execution_id and again.status == "Succeeded"


def test_rerun_from_the_first_step_reuses_nothing(store, tmp_path):
    executor = _executor(store, tmp_path, [])
    record = executor.run(DEFINITION, pipeline_name="p", from_step="Prep")
    assert record.status == "Succeeded" and record.source_execution_id is None
    assert record.step("Prep").cache_miss_reason == "rerun from this step as asked"


def test_rerun_from_an_unknown_step_lists_the_steps_before_running_anything(store, tmp_path):
    executor = _executor(store, tmp_path, [])
    with pytest.raises(DefinitionError) as caught:
        executor.run(DEFINITION, pipeline_name="p", from_step="Trian")
    assert str(caught.value) == "pipeline p has no step 'Trian'; its steps: Prep, Train"
    assert not (tmp_path / "work" / "runs").exists()


def test_rerun_needs_an_earlier_run_whose_upstream_steps_succeeded(store, tmp_path):
    executor = _executor(store, tmp_path, [])
    with pytest.raises(NoSourceRunError, match="no earlier run of p in which Prep succeeded"):
        executor.run(DEFINITION, pipeline_name="p", from_step="Train")
    store.put_bytes("s3://bkt/code/prep/s.py", b"raise SystemExit(2)\n")
    failed = executor.run(DEFINITION, pipeline_name="p")
    assert failed.status == "Failed"
    with pytest.raises(NoSourceRunError, match="run the whole pipeline first"):
        executor.run(DEFINITION, pipeline_name="p", from_step="Train")
    # another pipeline's runs are never a source
    store.put_bytes("s3://bkt/code/prep/s.py", PREP)
    assert executor.run(DEFINITION, pipeline_name="other").status == "Succeeded"
    with pytest.raises(NoSourceRunError):
        executor.run(DEFINITION, pipeline_name="p", from_step="Train")


def test_rerun_skips_a_run_whose_upstream_outputs_are_gone(store, tmp_path):
    executor = _executor(store, tmp_path, [])
    kept = executor.run(DEFINITION, pipeline_name="p")
    gone = executor.run(DEFINITION, pipeline_name="p", parameters={"Word": "x"})
    uri = gone.step("Prep").properties["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"]
    store.delete(f"{uri}/prepared.txt")
    rerun = executor.run(DEFINITION, pipeline_name="p", from_step="Train")
    assert rerun.source_execution_id == kept.execution_id


def test_fingerprint_parts_and_phrases():
    arguments = {
        "AppSpecification": {"ContainerArguments": [{"Get": "Parameters.Depth"}]},
        "HyperParameters": {},
    }
    assert parameter_references(arguments) == {"Depth"}
    old = step_fingerprint(
        arguments, {"HyperParameters": {"eta": "0.1"}}, {"Depth": 6}, {"code": "a", "train": "b"}
    )
    new = step_fingerprint(
        arguments, {"HyperParameters": {"eta": "0.2"}}, {"Depth": 8}, {"code": "c", "train": "b"}
    )
    assert set(old) == {
        "setting:AppSpecification",
        "parameter:Depth",
        "hyperparameter:eta",
        "code",
        "input:train",
    }
    assert changed_parts(old, new) == [
        "code changed",
        "parameter Depth changed (6 -> 8)",
        'hyperparameter eta changed ("0.1" -> "0.2")',
    ]
    assert explain_miss(None, new) == "no cached run of this step yet"
    assert "predates" in explain_miss({"execution_id": "r1", "components": {}}, new)
    assert (
        explain_miss({"execution_id": "r1", "components": new}, new)
        == "its resolved arguments changed (vs run r1)"
    )


def test_run_pipeline_from_an_unknown_step_or_without_an_earlier_run_is_one_line(capsys, monkeypatch):
    from cdp.backends import Backends
    from cdp.settings import Settings, get_settings
    from pipelines.cli import run_pipeline_main
    from tests.identity_support import issue

    monkeypatch.setenv("CDP_IDENTITY_FILE", str(issue(Backends(Settings()), "ds-1", "data-scientist")))
    get_settings.cache_clear()
    assert run_pipeline_main(["--pipeline", "fraud", "--local", "--from-step", "Trian"]) == 2
    err = capsys.readouterr().err
    assert err == (
        "run-pipeline: pipeline cdp-fraud has no step 'Trian'; "
        "its steps: Preprocess, Train, Evaluate, Gate, Register, Fail\n"
    )
    assert run_pipeline_main(["--pipeline", "fraud", "--local", "--from-step", "Train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("run-pipeline: no earlier run of cdp-fraud in which Preprocess succeeded") and (
        err.count("\n") == 1
    )
    with pytest.raises(SystemExit, match="--from-step runs with --local only"):
        run_pipeline_main(["--pipeline", "fraud", "--from-step", "Train", "--role", "arn:aws:iam::1:role/r"])
