"""Drift injected into the stream replay: only rows from the start position change, deterministically,
and a resumed producer injects exactly what an uninterrupted one does."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.corebanking.load import load_core_banking
from cdp.ibm.schema import TRANSACTIONS_SCHEMA
from cdp.settings import Settings
from cdp.streaming.drift_injection import DriftScenario
from cdp.streaming.lake_sink import consume
from cdp.streaming.produce import produce
from cdp.synth.generator import generate


def _rows(n: int, cards: int = 20) -> pa.Table:
    start = datetime(2019, 6, 1)
    return pa.Table.from_pylist(
        [
            {
                "line": i + 2,
                "user": i % cards,
                "card": 0,
                "ts": start + timedelta(minutes=7 * i),
                "amount_cents": 1000 + i,
                "channel": "chip",
                "merchant_id": 42,
                "merchant_city": "Austin",
                "merchant_state": "TX",
                "zip": "78701",
                "mcc": 5411,
                "errors": [],
                "is_fraud": False,
            }
            for i in range(n)
        ],
        schema=TRANSACTIONS_SCHEMA,
    )


def test_amount_shift_changes_only_rows_from_the_start_position():
    rows = _rows(100)
    scenario = DriftScenario("amount-shift", start_fraction=0.4, factor=3.0)
    # the replay is cut in batches: positions 30..69 of 100, drift from position 40
    changed, n = scenario.apply(rows.slice(30, 40), offset=30, total=100)
    assert n == 30
    before, after = rows.slice(30, 40)["amount_cents"].to_pylist(), changed["amount_cents"].to_pylist()
    assert after[:10] == before[:10]
    assert after[10:] == [3 * a for a in before[10:]]
    untouched, n0 = scenario.apply(rows.slice(0, 30), offset=0, total=100)
    assert n0 == 0 and untouched.equals(rows.slice(0, 30))


def test_fraud_pattern_is_a_new_labelled_pattern_and_deterministic():
    rows = _rows(2000, cards=200)
    scenario = DriftScenario("fraud-pattern", start_fraction=0.5, card_share=0.2, row_share=0.5, seed=3)
    first, n = scenario.apply(rows, offset=0, total=2000)
    again, n_again = scenario.apply(rows, offset=0, total=2000)
    assert first.equals(again) and n == n_again
    assert 50 < n < 400  # ~ 1000 rows x 0.2 x 0.5, give or take the card draw
    fraud = first.filter(pa.compute.field("is_fraud"))
    assert fraud.num_rows == n
    assert set(fraud["channel"].to_pylist()) == {"online"}
    assert set(fraud["merchant_city"].to_pylist()) == {"ONLINE"}
    assert all(100 <= a < 1000 for a in fraud["amount_cents"].to_pylist())
    assert len(set(fraud["merchant_id"].to_pylist())) <= 8
    assert min(fraud["line"].to_pylist()) >= 2 + 1000  # nothing before the start position
    other_seed, _ = DriftScenario("fraud-pattern", 0.5, card_share=0.2, row_share=0.5, seed=4).apply(
        rows, 0, 2000
    )
    assert not other_seed.equals(first)
    assert first.schema == TRANSACTIONS_SCHEMA


@pytest.mark.parametrize(
    "kwargs",
    [{"kind": "price-war"}, {"start_fraction": 1.5}, {"factor": 0}, {"card_share": 0}, {"row_share": 2}],
)
def test_bad_scenarios_are_refused(kwargs):
    with pytest.raises(ValueError):
        DriftScenario(**{"kind": "amount-shift", **kwargs})


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=5, seed=5, workers=1)
    return out


def test_a_resumed_replay_injects_what_an_uninterrupted_one_does(source, tmp_path, monkeypatch):
    scenario = DriftScenario("fraud-pattern", start_fraction=0.3, card_share=0.5, row_share=0.5)
    results = []
    for name in ("whole", "resumed"):
        monkeypatch.setenv("CDP_HOME", str(tmp_path / name))
        b = Backends(Settings())
        load_core_banking(source, b)
        run_batch(source, b)
        if name == "whole":
            last = produce(source, b, drift=scenario)
        else:  # three runs: a limit, a position, the rest; only the first names the scenario
            assert produce(source, b, limit=700, drift=scenario).sent == 700
            assert produce(source, b, upto=1200).sent == 500
            assert produce(source, b, upto=1000).sent == 0  # a position already passed sends nothing
            last = produce(source, b)
        consume(b)
        assert last.drift == scenario.to_dict()  # the resumed runs kept injecting the recorded one
        landed = b.catalog.query(  # tokens differ between the two homes (own keys): compare the values
            "SELECT ts, amount_cents, is_fraud, channel FROM transactions ORDER BY ALL"
        )
        results.append((last.drift_rows, landed.to_pylist()))
    (rows_whole, whole), (rows_resumed, resumed) = results
    assert rows_whole == rows_resumed > 0
    assert whole == resumed
