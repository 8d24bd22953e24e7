"""`cdp demo` stops with one line when a model it needs failed: no traceback, no step after it.

The steps before the pipelines are stubbed (their own tests run them); identities, the pipeline runner's
caller, the registry and the CLI's entry point are real.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import pytest

import app.demo as demo
from app.cli import main
from pipelines.local.record import RunRecord, StepRecord

LATER_STEPS = ("features_sync_online", "_score_stream", "_monitor")


@pytest.fixture
def stubbed_demo(monkeypatch):
    """The demo with its data steps stubbed; returns the list of later steps that were (wrongly) reached."""
    monkeypatch.setenv("CDP_USERS", "3")
    reached: list[str] = []
    for name in ("generate", "profile", "load", "batch", "sql", "_demo_access_checks", "_demo_features"):
        monkeypatch.setattr(demo, name, lambda *a, **k: None)
    monkeypatch.setattr(demo, "_stream_slices", lambda: (0, 0))
    monkeypatch.setattr(demo, "_produce_slice", lambda *a, **k: None)
    for name in LATER_STEPS:
        monkeypatch.setattr(demo, name, lambda *a, _name=name, **k: reached.append(_name))
    return reached


def _record(status: str, steps: list[StepRecord], reason: str | None = None) -> RunRecord:
    return RunRecord("cdp-fraud-pipeline", "abc123", "0" * 64, {}, status=status, failure_reason=reason,
                     steps=steps)  # fmt: skip


def _run_cdp_demo(monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["cdp", "demo"])
    with pytest.raises(SystemExit) as ended:
        main()
    out = capsys.readouterr()
    return ended.value.code, out.out, out.err


def test_a_failed_pipeline_stops_the_demo_with_one_line(stubbed_demo, monkeypatch, capsys):
    reason = "out of memory (peak 20.5 GB): set CDP_FRAUD_NEGATIVE_SAMPLE to train on fewer rows"
    preprocess = StepRecord("Preprocess", "Processing", status="Failed", failure_reason=reason, log="x.log")
    failed = _record(
        "Failed", [preprocess, StepRecord("Train", "Training")], f"step 'Preprocess' failed: {reason}"
    )
    monkeypatch.setattr("pipelines.run.run_local_pipeline", lambda model, *a, **k: (failed, None))

    code, out, err = _run_cdp_demo(monkeypatch, capsys)

    assert code == 1
    lines = [line for line in err.splitlines() if "demo stopped" in line]
    assert len(lines) == 1, err
    assert "'cdp-fraud'" in lines[0] and "'Preprocess'" in lines[0] and reason in lines[0]
    assert "Traceback" not in out + err
    assert stubbed_demo == []  # neither the online sync nor the stream scoring ran
    assert "pipeline runs" in out  # the table shows the failed run


def test_a_gate_failure_names_the_gate(stubbed_demo, monkeypatch, capsys):
    fail = StepRecord("Fail", "Fail", status="Failed", failure_reason="Fail step reached: pr_auc 0.1 < 0.3")
    failed = _record("Failed", [StepRecord("Train", "Training", status="Succeeded"), fail])
    monkeypatch.setattr("pipelines.run.run_local_pipeline", lambda model, *a, **k: (failed, None))

    code, _, err = _run_cdp_demo(monkeypatch, capsys)

    assert code == 1
    assert "step 'Fail' failed: Fail step reached: pr_auc 0.1 < 0.3; the model did not meet its gate" in err


def test_no_champion_stops_the_demo_before_the_stream(stubbed_demo, monkeypatch, capsys):
    """Every pipeline succeeds but registers nothing: no champion to score with, so the demo stops."""
    succeeded = _record("Succeeded", [StepRecord("Train", "Training", status="Succeeded")])
    monkeypatch.setattr("pipelines.run.run_local_pipeline", lambda model, *a, **k: (succeeded, None))

    code, _, err = _run_cdp_demo(monkeypatch, capsys)

    assert code == 1
    assert "demo stopped: model 'cdp-fraud' has no champion" in err
    assert "Traceback" not in err
    assert stubbed_demo == []


def test_the_stage_hook_sees_each_stage_and_the_stop(stubbed_demo, monkeypatch):
    reason = "script exited with code 1"
    step = StepRecord("Train", "Training", status="Failed", failure_reason=reason, log="/tmp/train.log")
    records = {"fraud": _record("Failed", [step], reason)}
    monkeypatch.setattr("pipelines.run.run_local_pipeline", lambda model, *a, **k: (records[model], None))
    seen: list[tuple[str, str]] = []

    @contextmanager
    def hook(name: str):
        try:
            yield
        except demo.DemoStopped:
            seen.append((name, "stopped"))
            raise
        seen.append((name, "ok"))

    with pytest.raises(demo.DemoStopped, match="model 'cdp-fraud' not trained.*read its log /tmp/train.log"):
        demo.run_demo(stage_hook=hook)
    assert seen[-1:] == [("pipeline fraud", "stopped")]
    assert [name for name, _ in seen[:5]] == ["identities", "generate", "profile", "load", "batch"]
