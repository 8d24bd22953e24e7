"""The producer keeps the stream's part of the source in the state folder: later replay runs read it back
instead of the whole source file, send exactly what a run over the source sends, and read the source again
when it changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.corebanking.load import load_core_banking
from cdp.ibm.reader import find_source_files
from cdp.settings import Settings
from cdp.streaming import produce as produce_module
from cdp.streaming.lake_sink import consume
from cdp.streaming.produce import produce, stream_rows
from cdp.streaming.source_cache import CACHE_FILE


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    from cdp.synth.generator import generate

    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=5, seed=5, workers=1)
    return out


def _home(tmp_path: Path, monkeypatch, name: str, source: Path) -> Backends:
    monkeypatch.setenv("CDP_HOME", str(tmp_path / name))
    b = Backends(Settings())
    load_core_banking(source, b)
    run_batch(source, b)
    return b


def _no_source_read(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the source file was read again")

    monkeypatch.setattr(produce_module, "iter_transactions", refuse)


def test_later_slices_read_the_kept_stream_rows_and_land_what_one_run_does(source, tmp_path, monkeypatch):
    landed = []
    for name in ("whole", "slices"):
        b = _home(tmp_path, monkeypatch, name, source)
        if name == "whole":
            whole = produce(source, b)
        else:
            first = produce(source, b, upto=600)
            assert (b.settings.state_dir / CACHE_FILE).is_file()
            with monkeypatch.context() as m:
                _no_source_read(m)
                second = produce(source, b, upto=1100)
                third = produce(source, b)
            assert first.sent + second.sent + third.sent + first.erased + second.erased + third.erased == (
                whole.total
            )
            assert third.already_sent == 1100 and third.total == whole.total
        consume(b)
        rows = b.catalog.query("SELECT ts, amount_cents, is_fraud FROM transactions ORDER BY ALL").to_pylist()
        landed.append(rows)
    assert landed[0] == landed[1]


def test_a_changed_source_is_read_again(source, tmp_path, monkeypatch):
    b = _home(tmp_path, monkeypatch, "changed", source)
    before, _ = stream_rows(source, b)
    with monkeypatch.context() as m:
        _no_source_read(m)
        cached, _ = stream_rows(source, b)  # same source: the kept rows, nothing read
    assert cached.equals(before)
    path = find_source_files(source).transactions[0]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    try:
        with monkeypatch.context() as m:
            _no_source_read(m)
            with pytest.raises(AssertionError, match="read again"):
                stream_rows(source, b)
        again, _ = stream_rows(source, b)
    finally:
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert again.equals(before)


def test_a_torn_cache_file_is_ignored(source, tmp_path, monkeypatch):
    b = _home(tmp_path, monkeypatch, "torn", source)
    before, _ = stream_rows(source, b)
    (b.settings.state_dir / CACHE_FILE).write_bytes(b"not parquet")
    again, _ = stream_rows(source, b)
    assert again.equals(before)
