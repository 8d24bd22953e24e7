"""CDP_STREAM_FRACTION=0: all history to the lake, nothing streamed; every consumer of the fraction copes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

import app.demo as demo
from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.lake.split import load_or_compute_split, split_of_seconds
from cdp.settings import Settings, get_settings
from cdp.streaming.produce import produce
from tests.ibm_samples import TRANSACTIONS_ROWS, write_samples


def test_the_setting_takes_zero_but_not_a_negative_share_or_one(monkeypatch):
    monkeypatch.setenv("CDP_STREAM_FRACTION", "0")
    assert Settings().stream_fraction == 0
    for bad in ("-0.1", "1"):
        monkeypatch.setenv("CDP_STREAM_FRACTION", bad)
        with pytest.raises(ValidationError):
            Settings()


def test_a_zero_split_puts_its_cutoff_after_the_newest_row():
    seconds = np.array([100, 300, 200, 300], dtype=np.int64)
    split = split_of_seconds("src", [seconds[:2], seconds[2:]], 0.0)
    assert split.stream_rows == 0 and split.rows == 4
    assert split.cutoff.timestamp() == 301


@pytest.fixture()
def zero(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CDP_STREAM_FRACTION", "0")
    get_settings.cache_clear()
    folder = tmp_path / "src"
    folder.mkdir()
    write_samples(folder)
    return folder


def test_batch_takes_every_row_and_the_producer_sends_nothing(zero, capsys):
    b = Backends()
    report = run_batch(zero, b)
    tx = report.files["credit_card_transactions-ibm_v2.csv"]
    assert tx["rows_accepted"] == len(TRANSACTIONS_ROWS) == report.batch_rows
    assert report.stream_rows == 0 and report.split.stream_rows == 0
    assert b.catalog.query("SELECT count(*) AS n FROM transactions").to_pylist() == [
        {"n": len(TRANSACTIONS_ROWS)}
    ]
    sent = produce(zero, b)
    assert (sent.total, sent.sent, sent.erased, sent.flagged) == (0, 0, 0, 0)
    assert b.oltp.counts().transactions == 0

    from cdp.cli.stream import stream_produce

    stream_produce(zero)
    assert "stream: nothing to replay" in capsys.readouterr().out


def test_the_demo_says_the_stream_has_nothing_to_replay_and_goes_on(zero, monkeypatch, capsys):
    s = get_settings()
    load_or_compute_split(
        s.state_dir / "split.json", "x.csv", 0.0, lambda: [np.array([5, 9], dtype=np.int64)]
    )
    reached: list[str] = []
    for name in (
        "_demo_identities", "generate", "profile", "load", "batch", "sql", "_demo_access_checks",
        "_demo_features", "_demo_promote_first_champions", "require_champions", "features_sync_online",
        "_demo_erasure", "audit_verify", "_demo_where_things_are", "notify_run",
    ):  # fmt: skip
        monkeypatch.setattr(demo, name, lambda *a, **k: None)
    monkeypatch.setattr(demo, "_demo_pipelines", lambda stage: None)
    for name in ("_produce_slice", "_score_stream", "_monitor", "_demo_stream_metrics"):
        monkeypatch.setattr(demo, name, lambda *a, _name=name, **k: reached.append(_name))

    demo.run_demo()

    out = capsys.readouterr().out
    assert reached == []
    assert "stream: nothing to replay (CDP_STREAM_FRACTION=0.0" in " ".join(out.split())
    assert "demo finished" in out
