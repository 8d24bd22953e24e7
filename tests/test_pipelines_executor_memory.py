"""Memory-aware steps of the local executor: each job step's peak memory and CPU seconds are recorded and
reported; a script killed by the kernel (SIGKILL) or dying of MemoryError fails its step with one line
naming its peak and the pipeline parameters to change."""

from __future__ import annotations

import json

import pytest

from cdp.objectstore.local import FolderObjectStore
from pipelines.local import LocalPipelineExecutor
from pipelines.local.graph import parse_steps
from pipelines.local.memory_advice import memory_settings, out_of_memory_advice
from pipelines.local.usage import gigabytes
from tests.pipeline_support import RecordingRegistry
from tests.test_pipelines_executor import _processing

MB = 2**20

# Touches `size` MB (so it is resident), burns a little CPU, holds the memory a moment (longer than the
# sampling interval), then, if asked, kills itself as the kernel's out-of-memory killer would.
ALLOCATE = b"""
import os, signal, sys, time
size = int(sys.argv[1])
block = bytearray(size * 2**20)
for i in range(0, len(block), 4096):
    block[i] = 1
total = sum(range(3_000_000))
print("allocated", size, "MB", flush=True)
time.sleep(0.5)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.fixture
def store(tmp_path):
    return FolderObjectStore(tmp_path / "lake", fsync=False)


def _definition(mode: str, size_mb: int) -> dict:
    prep = _processing("Prep", "s3://bkt/code/s.py", args=[str(size_mb), mode])
    prep["Arguments"]["ProcessingResources"] = {
        "ClusterConfig": {"InstanceType": {"Get": "Parameters.ProcessingInstanceType"}, "InstanceCount": 1}
    }
    prep["Arguments"]["AppSpecification"]["ContainerArguments"] += [
        "--rate",
        {"Get": "Parameters.SampleRate"},
    ]
    train = _processing("Train", "s3://bkt/code/s.py", args=["1", "done"], depends=["Prep"])
    return {
        "Parameters": [
            {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
            {"Name": "SampleRate", "Type": "String", "DefaultValue": "auto"},
            {"Name": "MinAuc", "Type": "Float", "DefaultValue": 0.5},
        ],
        "Steps": [prep, train],
    }


def _executor(store, tmp_path, **options) -> LocalPipelineExecutor:
    return LocalPipelineExecutor(
        store,
        query_to_files=lambda sql, destination: None,
        register=RecordingRegistry().register,
        work_dir=tmp_path / "work",
        **options,
    )


def test_each_job_step_records_its_peak_memory_and_cpu_seconds(store, tmp_path):
    store.put_bytes("s3://bkt/code/s.py", ALLOCATE)
    lines: list[str] = []
    executor = _executor(store, tmp_path, progress=lines.append)
    record = executor.run(_definition("done", 200), pipeline_name="p")
    assert record.status == "Succeeded", record.failure_reason
    prep, train = record.step("Prep"), record.step("Train")
    assert 200 * MB <= prep.peak_memory_bytes < 400 * MB
    assert train.peak_memory_bytes < prep.peak_memory_bytes - 150 * MB  # per step, not the run's maximum
    assert 0 < prep.cpu_seconds and 0 < train.cpu_seconds
    saved = json.loads((executor.run_dir(record.execution_id) / "run.json").read_text())
    assert saved["steps"][0]["peak_memory_bytes"] == prep.peak_memory_bytes
    assert saved["steps"][0]["cpu_seconds"] == prep.cpu_seconds
    assert (
        lines[0].startswith("Prep: Succeeded (") and f"peak {gigabytes(prep.peak_memory_bytes)}" in lines[0]
    )
    assert "CPU " in lines[0] and lines[1].startswith("Train: Succeeded")


def test_a_step_killed_by_the_kernel_is_reported_as_out_of_memory_with_the_settings_to_change(
    store, tmp_path
):
    store.put_bytes("s3://bkt/code/s.py", ALLOCATE)
    lines: list[str] = []
    record = _executor(store, tmp_path, progress=lines.append).run(
        _definition("kill", 300), pipeline_name="p"
    )
    assert record.status == "Failed"
    prep = record.step("Prep")
    assert prep.status == "Failed" and record.step("Train").status == "NotExecuted"
    assert prep.peak_memory_bytes >= 300 * MB
    reason = prep.failure_reason
    assert "\n" not in reason and "Traceback" not in reason and "code -9" not in reason
    assert f"out of memory (peak {gigabytes(prep.peak_memory_bytes)})" in reason
    assert "set SampleRate (pipeline parameter)" in reason and "larger ProcessingInstanceType" in reason
    assert "MinAuc" not in reason  # a gate threshold does not change memory
    assert lines == [
        f"Prep: Failed ({prep.duration_seconds:.1f} s, CPU {prep.cpu_seconds:.1f} s, peak "
        f"{gigabytes(prep.peak_memory_bytes)})"
    ]


def test_a_capped_step_that_runs_out_of_address_space_fails_as_out_of_memory(store, tmp_path):
    store.put_bytes("s3://bkt/code/s.py", ALLOCATE)
    executor = _executor(store, tmp_path, step_memory_limit_bytes=1024 * MB)
    record = executor.run(_definition("done", 2048), pipeline_name="p")
    assert record.status == "Failed"
    reason = record.step("Prep").failure_reason
    assert "out of memory (peak" in reason and "SampleRate" in reason
    assert "MemoryError" in open(record.step("Prep").log).read()  # the traceback stays in the log


def test_memory_advice_names_the_parameters_of_the_step_and_its_upstream_steps():
    nodes = parse_steps(_definition("done", 1))
    assert memory_settings(nodes, "Prep") == ["SampleRate", "ProcessingInstanceType"]
    assert memory_settings(nodes, "Train") == ["SampleRate", "ProcessingInstanceType"]  # its input's size
    assert out_of_memory_advice([]) == "give the step less data or free memory on this machine"
    assert out_of_memory_advice(["TrainingInstanceType"]).startswith("set a larger TrainingInstanceType")


def test_instance_counts_are_machine_settings_not_data_settings():
    settings = ["TrainingInstanceType", "NegativeSampleRate", "TrainingInstanceCount"]
    advice = out_of_memory_advice(settings)
    assert advice.startswith("set NegativeSampleRate (pipeline parameter)")
    assert "larger TrainingInstanceType or TrainingInstanceCount on SageMaker" in advice
