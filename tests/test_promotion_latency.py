"""The promotion gate's latency measure: what scoring costs, not how busy the machine is."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pandas as pd
import pytest

import inference.predict
from monitoring.promotion.latency import p99_latency_ms


def test_time_the_scoring_call_waits_is_not_charged_to_the_model(monkeypatch):
    # a call preempted for 20 ms (another process has the core) costs the model nothing
    monkeypatch.setattr(inference.predict, "predictions", lambda model, frame: time.sleep(0.02))
    p99 = p99_latency_ms(SimpleNamespace(kind="regression"), pd.DataFrame({"x": range(30)}), rows=20)
    assert p99 < 10.0


def test_the_cpu_the_scoring_call_burns_is_charged(monkeypatch):
    def busy(model, frame):
        started = time.process_time()
        while time.process_time() - started < 0.02:
            pass

    monkeypatch.setattr(inference.predict, "predictions", busy)
    p99 = p99_latency_ms(SimpleNamespace(kind="regression"), pd.DataFrame({"x": range(30)}), rows=20)
    assert p99 >= 19.0


def test_no_rows_is_an_error():
    with pytest.raises(ValueError, match="no rows"):
        p99_latency_ms(SimpleNamespace(kind="regression"), pd.DataFrame({"x": []}), rows=5)
