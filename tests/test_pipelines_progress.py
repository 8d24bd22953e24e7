"""Each step's line as it finishes: wall, CPU and peak memory, from the executor through
`run_local_pipeline` (what `run-pipeline --local` and the demo print)."""

from __future__ import annotations

import re

from cdp.backends import Backends
from cdp.settings import Settings
from pipelines.local.record import StepRecord
from pipelines.run import run_local_pipeline
from tests.pipeline_support import generate_lake
from tests.test_monitoring_drift import write_scripts

LINE = re.compile(
    r"fraud (?P<step>\w+): (?P<status>Succeeded|Failed) \((?P<wall>\d+\.\d) s"
    r"(, CPU (?P<cpu>\d+\.\d) s, peak (?P<peak>\d+\.\d) GB)?(?P<cached>, cached)?\)"
)


def test_a_step_line_shows_wall_cpu_peak_memory_and_a_cache_hit():
    train = StepRecord(
        "Train",
        "Training",
        "Succeeded",
        duration_seconds=41.23,
        cpu_seconds=80.46,
        peak_memory_bytes=5 * 2**29,
    )
    assert train.summary() == "Train: Succeeded (41.2 s, CPU 80.5 s, peak 2.5 GB)"
    train.cache_hit, train.cpu_seconds, train.peak_memory_bytes = True, None, None
    assert train.summary() == "Train: Succeeded (41.2 s, cached)"
    gate = StepRecord("Gate", "Condition", "Failed", duration_seconds=0.004)
    assert gate.summary() == "Gate: Failed (0.0 s)"


def test_run_local_pipeline_prints_each_step_as_it_finishes(tmp_path):
    backends = Backends(Settings(home=tmp_path / "home", seed=7))
    generate_lake(backends.object_store, backends.catalog)
    lines: list[str] = []
    record, _ = run_local_pipeline(
        "fraud", backends, scripts_dir=write_scripts(tmp_path / "scripts"), progress=lines.append
    )
    assert record.status == "Succeeded", record.failure_reason
    *lines, tracked = lines  # the finished run is logged to its MLflow experiment last
    assert tracked.startswith("fraud tracked: MLflow run ") and tracked.endswith("fraud-experiments")
    misses = [line for line in lines if ": not from the cache: " in line]
    jobs = [s.name for s in record.steps if s.type in ("Processing", "Training")]
    # a first run: each cached job step says why it runs, before its finished line
    assert misses == [f"fraud {name}: not from the cache: no cached run of this step yet" for name in jobs]
    lines = [line for line in lines if line not in misses]
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), lines
    ran = [s for s in record.steps if s.status != "NotExecuted"]
    assert [m["step"] for m in matches] == [s.name for s in ran]
    for match, step in zip(matches, ran, strict=True):
        assert (match["cpu"] is not None) == (step.type in ("Processing", "Training"))
    preprocess = matches[0]
    assert preprocess["step"] == "Preprocess" and float(preprocess["peak"]) > 0
