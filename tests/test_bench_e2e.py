"""The end-to-end benchmark's plumbing: the per-stage sampler and the result file (no demo is run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import bench.harness
from bench.bench_e2e import RESULT_NAME, measure_anchor, summarise, table_rows
from bench.e2e_sampler import StageRecord, TreeSampler

CHILD_MB = 200
# A child that holds CHILD_MB of touched memory and burns CPU for a moment, then exits.
CHILD = (
    f"import time\nb = bytearray({CHILD_MB} << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
    "t = time.process_time()\nwhile time.process_time() - t < 0.4: pass\ntime.sleep(0.5)\n"
)


def test_a_stage_counts_its_childrens_memory_and_cpu():
    with TreeSampler(interval=0.05) as sampler:
        with sampler.stage("child") as record:
            subprocess.run([sys.executable, "-c", CHILD], check=True)
        with sampler.stage("idle"):
            pass
    child, idle = sampler.records
    own_mb = _own_rss_mb()  # the test process is in the tree too (large in a loaded test worker)
    assert record is child and child.ok and child.error is None
    assert child.peak_rss_process_gb * 1024 >= min(CHILD_MB, own_mb)  # the largest single process
    assert child.peak_rss_tree_gb * 1024 >= own_mb + 0.8 * CHILD_MB  # the child's memory counts in the tree
    assert child.cpu_seconds >= 0.35  # the reaped child's CPU counts
    assert child.wall_seconds >= 0.8
    assert idle.ok and idle.cpu_seconds < 0.3
    # the finished child is not counted again (other processes of a test worker may be in the tree too)
    assert (child.peak_rss_tree_gb - idle.peak_rss_tree_gb) * 1024 > 0.5 * CHILD_MB


def _own_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def test_a_failing_stage_is_recorded_and_the_error_propagates():
    with TreeSampler(interval=0.05) as sampler:
        with pytest.raises(RuntimeError), sampler.stage("broken"):
            raise RuntimeError("model 'cdp-fraud' has no champion loaded")
        anchor = measure_anchor(sampler, "broken", _failing_anchor, None)
    (broken,) = sampler.records  # the anchor is not a stage of its own
    assert not broken.ok
    assert broken.error.startswith("RuntimeError: model 'cdp-fraud' has no champion loaded at ")
    assert anchor["ok"] is False and anchor["error"].startswith("ZeroDivisionError")


def _failing_anchor(settings: object) -> dict:
    return {"ratio": 1 / 0}


def _large_anchor(settings: object) -> dict:
    held = bytearray(CHILD_MB << 20)
    for i in range(0, len(held), 4096):
        held[i] = 1
    return {"what": "held memory", "mb": len(held) >> 20}


def test_an_anchor_runs_in_a_child_so_its_memory_is_not_the_demos():
    before = _own_high_water_mb()
    with TreeSampler(interval=0.05) as sampler:
        anchor = measure_anchor(sampler, "big", _large_anchor, None)
    assert anchor["ok"] and anchor["mb"] == CHILD_MB  # its figures came back from the child
    assert anchor["peak_rss_process_gb"] * 1024 >= 0.8 * CHILD_MB  # measured, as a stage is
    assert sampler.records == []  # not a stage of the demo
    assert _own_high_water_mb() - before < CHILD_MB / 2  # the demo's own process never held it


def _own_high_water_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def test_the_result_file_holds_every_stage_totals_and_the_acceptance(tmp_path, monkeypatch):
    monkeypatch.setattr(bench.harness, "RESULTS_DIR", tmp_path)
    anchor = {"what": "duckdb COPY", "wall_seconds": 4.0}
    batch = StageRecord("batch", ok=True, wall_seconds=10.0, cpu_seconds=15.0, peak_rss_process_gb=1.5,
                        peak_rss_tree_gb=2.0, anchor=anchor)  # fmt: skip
    scoring = StageRecord("stream scoring 1", ok=False, error="ModelUnavailableError", wall_seconds=1.0)
    train = {"label": "xgboost.train", "wall_seconds": 9.0, "work_seconds": 8.0, "stage_part_seconds": 20.0}
    fraud = StageRecord("pipeline fraud", ok=True, wall_seconds=30.0, anchor=train)
    stages = [batch, fraud, scoring]
    result = summarise(100, stages, wall=11.0, cpu=15.5, stopped="DemoStopped: x", rows=1234, anchors=4.0)

    path = bench.harness.write_result(RESULT_NAME, result)

    written = json.loads(path.read_text())
    assert path.name == "e2e_full.json"
    assert written["users"] == 100 and written["rows"] == 1234 and written["machine"]["cpus"] >= 1
    assert [s["stage"] for s in written["stages"]] == ["batch", "pipeline fraud", "stream scoring 1"]
    assert written["total"]["demo_wall_seconds"] == 7.0  # the anchors' time is not the demo's
    assert written["stages"][0]["x_anchor"] == 2.5  # wall / anchor wall
    assert written["stages"][1]["x_anchor"] == 2.5  # the matched part (Train step) / the anchor's work
    assert written["stages"][2]["error"] == "ModelUnavailableError"
    assert (
        written["total"]["peak_rss_process_gb"] == 1.5 and written["total"]["stopped_by"] == "DemoStopped: x"
    )
    assert written["acceptance"] == {
        "every_stage_succeeded": False,
        "peak_rss_per_process_within_8gb": True,
        "total_within_30min": True,
    }
    rows = table_rows(written)
    assert rows[0]["anchor s"] == 4.0 and rows[1]["anchor s"] == 8.0 and rows[2]["ok"] == "FAILED"
