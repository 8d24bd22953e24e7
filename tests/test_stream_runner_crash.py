"""`cdp stream run` killed with SIGKILL at random moments, then resumed, scores every event exactly once.

A few thousand protected transactions are put on the local stream of a temporary CDP home holding an
approved fraud champion. The runner (`python -m app.cli stream run`, small batches) is killed several times
at seeded random moments, then run to the end. The result must equal an uninterrupted run over the same
events in another home: the same transaction ids in `transactions_scored` (one row each), the same online
features and probabilities for every transaction (a crash must neither skip nor double-count an event in
the cards' velocity state), and exactly the same `fraud_alerts`.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cdp.backends import Backends
from cdp.idempotency.sqlite import TABLE, index_file
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.scoring.port import Score, ScoredBatch
from cdp.settings import Settings
from cdp.stream import Record, put_all
from cdp.streaming import records
from inference.streaming.handler import IDEMPOTENCY_CONSUMER, build_handler
from inference.streaming.runner import StreamRunner, run_stream
from tests.test_inference_app import random_events, token, train_fraud_model

TOTAL = 2000  # events replayed
CARDS = 12
BATCH_SIZE = 60  # records per handler batch (per shard)
KILLS = 4
SEED = 20261128
ALERT_THRESHOLD = 0.3


def stream_events(rng: random.Random, cards: list[str], users: dict[str, str]) -> list[dict]:
    """`TOTAL` lake rows in time order; bursts of a card's events make the velocity features matter."""
    rows, ts = [], datetime(2019, 9, 1)
    for i in range(TOTAL):
        ts += timedelta(seconds=rng.choice((5, 30, 240, 1800)))
        card = cards[min(int(rng.expovariate(0.35)), len(cards) - 1)]
        risky = rng.random() < 0.25
        rows.append(
            {
                "txn_id": f"{card[4:]}-{100_000 + i}",
                "user_token": users[card],
                "card_token": card,
                "ts": ts,
                "amount_cents": rng.randint(20_000, 150_000) if risky else rng.randint(200, 9_000),
                "channel": "online" if risky else rng.choice(("chip", "swipe")),
                "merchant_id": rng.randint(1, 40),
                "merchant_city": None if risky else "Reno",
                "merchant_state": None if risky else "NV",
                "zip": None if risky else "89501",
                "mcc": rng.choice((7995, 5411)) if risky else 5411,
                "errors": ["Bad CVV"] if risky and rng.random() < 0.5 else None,
                "is_fraud": False,
                "event_seq": 100_000 + i,
                "year": ts.year,
                "month": ts.month,
            }
        )
    return rows


def make_home(home: Path, model_dir: Path, features: list[str], events: list[dict]) -> Backends:
    """A CDP home with the approved champion and `events` on its stream."""
    backends = Backends(Settings(home=home, stream_batch_size=BATCH_SIZE))
    registry = backends.model_registry
    lineage = Lineage("sha256:test", features, "test", "run-1")
    registry.register("cdp-fraud", model_dir, {"alert_threshold": ALERT_THRESHOLD}, {}, lineage)
    registry.approve("cdp-fraud", 1, "tester", "test champion")
    put_all(backends.stream, [Record(e["card_token"], records.encode(e)) for e in events])
    return backends


# The runner process `cdp stream run` starts (`run_stream`), warmed up before it is told to go: the next
# victim imports the ML stack and opens the registry while the current one works, which keeps the test short.
RUNNER = textwrap.dedent(
    """
    import sys
    from cdp.backends import Backends
    from inference.streaming.runner import run_stream
    backends = Backends()
    assert backends.model_registry.champion("cdp-fraud") is not None
    import xgboost  # noqa: F401 - loaded by the champion's first load otherwise
    print("ready", flush=True)
    if sys.stdin.readline().strip() == "go":
        report = run_stream(backends)
        print(f"records={report.records} deliveries={report.deliveries}", flush=True)
    """
)


def spawn_runner(home: Path) -> subprocess.Popen:
    """A runner process over `home`, ready (warmed up) but waiting for `go` on its stdin."""
    env = {**os.environ, "CDP_HOME": str(home), "CDP_STREAM_BATCH_SIZE": str(BATCH_SIZE)}
    env.pop("CDP_BACKEND", None)
    return subprocess.Popen(
        [sys.executable, "-c", RUNNER],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def go(runner: subprocess.Popen) -> None:
    ready = runner.stdout.readline()
    assert ready.strip() == "ready", runner.stderr.read()[-2000:]
    runner.stdin.write("go\n")
    runner.stdin.flush()


def claimed_count(home: Path) -> int:
    """Transactions the handler has claimed in its idempotency index (0 before its index exists)."""
    path = index_file(Settings(home=home), IDEMPOTENCY_CONSUMER)
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as con:
            return con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def lake(backends: Backends, table: str) -> list[dict]:
    return backends.catalog.query(f"SELECT * FROM {table} ORDER BY txn_id").to_pylist()


def by_txn(rows: list[dict]) -> dict[str, tuple[str, float, bool, int]]:
    return {
        r["txn_id"]: (r["features"], r["fraud_probability"], r["is_alert"], r["model_version"]) for r in rows
    }


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_sigkilled_stream_runner_resumes_to_the_uninterrupted_result(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    cards = [token("crd_", rng) for _ in range(CARDS)]
    users = {c: token("usr_", rng) for c in cards}
    model_dir = tmp_path / "fraud"
    train_fraud_model(model_dir, random_events(rng, cards, users, 400), seed=1)
    features = load_scoring_model(model_dir).features
    events = stream_events(rng, cards, users)

    home = tmp_path / "crashed"
    crashed = make_home(home, model_dir, features, events)
    shutil.copytree(home, tmp_path / "reference")  # the same registry and stream, for the uninterrupted run
    victim = spawn_runner(home)  # warms up while the reference runs

    reference = Backends(Settings(home=tmp_path / "reference", stream_batch_size=BATCH_SIZE))
    report = run_stream(reference)
    assert report.records == TOTAL and report.dead_lettered == 0
    expected_scored = lake(reference, "transactions_scored")
    expected_alerts = lake(reference, "fraud_alerts")
    assert len(expected_scored) == TOTAL
    assert 0 < len(expected_alerts) < TOTAL  # the check below compares a non-trivial set of alerts

    targets = sorted(rng.sample(range(BATCH_SIZE, TOTAL - 8 * BATCH_SIZE), KILLS))  # far from the end
    kill_points = []
    go(victim)
    for target in targets:
        delay = rng.uniform(0.0, 0.25)  # lands the kill anywhere inside a batch's work
        successor = spawn_runner(home)
        deadline = time.monotonic() + 90
        while claimed_count(home) < target and victim.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        time.sleep(delay)
        assert victim.poll() is None, (
            f"the runner ended before the kill point: {victim.stderr.read()[-2000:]}"
        )
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        assert victim.returncode == -signal.SIGKILL
        for pipe in (victim.stdin, victim.stdout, victim.stderr):
            pipe.close()
        kill_points.append((target, round(delay, 3), claimed_count(home)))
        victim = successor
        go(victim)
    print("kill points (claimed target, delay s, claimed at kill):", kill_points)
    assert kill_points[-1][2] < TOTAL  # the last kill really interrupted the run

    out, err = victim.communicate(timeout=240)  # the final, uninterrupted resume
    assert victim.returncode == 0, err[-2000:]
    print("final run:", out.strip().splitlines()[-1])

    scored = lake(crashed, "transactions_scored")
    ids = [r["txn_id"] for r in scored]
    assert len(ids) == len(set(ids)) == TOTAL  # enriched rows = events sent, no duplicates
    assert set(ids) == {e["txn_id"] for e in events}
    got, want = by_txn(scored), by_txn(expected_scored)
    differing = sorted(t for t in want if got[t][0] != want[t][0])
    assert not differing, (
        f"{len(differing)} transactions scored with other online features than uninterrupted"
    )
    for txn_id, (_, probability, alert, version) in want.items():
        assert got[txn_id][1] == pytest.approx(probability, rel=1e-6) and got[txn_id][2:] == (alert, version)
    alerts = lake(crashed, "fraud_alerts")
    alert_ids = [a["txn_id"] for a in alerts]
    assert len(alert_ids) == len(set(alert_ids))  # no duplicated alert
    assert sorted(alert_ids) == sorted(a["txn_id"] for a in expected_alerts)  # none lost, none extra
    with sqlite3.connect(index_file(Settings(home=home), IDEMPOTENCY_CONSUMER)) as con:
        assert con.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] == TOTAL
    assert json.loads(scored[0]["features"])  # the rows carry their features


# -- the crash windows inside one batch, hit exactly (in-process, no model registry) ------------------------
class VelocityEndpoint:
    """A scoring endpoint whose probability is the card's event count in the last hour, over 4."""

    def score(self, feature_rows: Sequence[Mapping[str, Any]]) -> ScoredBatch:
        scores = [Score(min(1.0, r["txn_count_1h"] / 4), []) for r in feature_rows]
        return ScoredBatch("velocity", 1, 0.5, scores)

    def close(self) -> None:
        """Nothing to stop."""


class Crash(BaseException):
    """Stands for the process dying at that point (nothing after it runs, nothing is checkpointed)."""


def handled(home: Path, events: list[dict], crash_in: str | None, at_call: int = 3) -> list[dict]:
    """`transactions_scored` after running `events` through the runner, crashing once in `crash_in`."""
    backends = Backends(Settings(home=home))
    put_all(backends.stream, [Record(e["card_token"], records.encode(e)) for e in events])
    handler = build_handler(backends, endpoint=VelocityEndpoint())
    if crash_in is not None:
        target = handler.card_features if crash_in == "advance" else handler.index
        method = "features" if crash_in == "advance" else "mark_applied"
        real, calls = getattr(target, method), []

        def crashing(*args: Any, **kwargs: Any) -> Any:
            if crash_in == "advance" and not kwargs.get("record"):
                return real(*args, **kwargs)
            calls.append(1)
            if len(calls) == at_call:
                raise Crash
            return real(*args, **kwargs)

        setattr(target, method, crashing)
        with pytest.raises(Crash):
            StreamRunner(backends.stream, handler, batch_size=25).run()
    StreamRunner(backends.stream, handler, batch_size=25).run()  # the restart resumes from the checkpoints
    if crash_in is not None:
        assert handler.report.recovered > 0  # the crashed batch's claims were found unapplied
    handler.index.close()
    return lake(backends, "transactions_scored")


@pytest.mark.parametrize("crash_in", ["advance", "mark_applied"])
def test_a_crash_between_claim_and_applied_mark_counts_every_event_once(
    tmp_path: Path, crash_in: str
) -> None:
    """After the claim, before (or inside) the card-state advance; or after the advance, before the mark."""
    rng = random.Random(7)
    cards = [token("crd_", rng) for _ in range(3)]
    events = stream_events(rng, cards, {c: token("usr_", rng) for c in cards})[:300]
    want = by_txn(handled(tmp_path / "uninterrupted", events, None))
    got = by_txn(handled(tmp_path / "crashed", events, crash_in))
    assert len(got) == len(want) == len(events)
    assert {t: v[0] for t, v in got.items()} == {t: v[0] for t, v in want.items()}  # same velocity state
    assert sum(v[2] for v in want.values()) > 0  # the velocity score does alert on bursts
    assert {t for t, v in got.items() if v[2]} == {t for t, v in want.items() if v[2]}
