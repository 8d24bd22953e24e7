"""The secure data plane end to end on generated data: load -> batch -> stream -> lake, then the checks
a bank's auditor would run: reconciliation, exactly-once after SIGKILL, no PII leak, erasure, audit."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.csv as pv
import pyarrow.parquet as pq
import pytest

from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.compliance.leakscan import LeakScanner, scan_core_banking
from cdp.corebanking.erasure import forget_customer
from cdp.corebanking.load import load_core_banking
from cdp.ibm.schema import TRANSACTIONS_FILE
from cdp.security.errors import AccessDenied, CustomerErased
from cdp.security.vault import Caller
from cdp.settings import Settings
from cdp.streaming.lake_sink import consume
from cdp.streaming.produce import produce
from cdp.synth.generator import generate

USERS = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ibm")
    generate(out, users=USERS, seed=11, workers=1)
    return out


def _pii_values(source: Path) -> list[str]:
    users = pv.read_csv(source / "sd254_users.csv").to_pydict()
    cards = pv.read_csv(
        source / "sd254_cards.csv", convert_options=pv.ConvertOptions(column_types={"Card Number": "string"})
    ).to_pydict()
    contacts = pv.read_csv(source / "core_banking" / "contacts.csv").to_pydict()
    return [*users["Person"], *users["Address"], *cards["Card Number"], *contacts["Email"]]


def _source_cvvs_and_pans(source: Path) -> tuple[dict[tuple[int, int], str], list[str]]:
    types = {"CVV": "string", "Card Number": "string"}
    cards = pv.read_csv(
        source / "sd254_cards.csv", convert_options=pv.ConvertOptions(column_types=types)
    ).to_pylist()
    return {(c["User"], c["CARD INDEX"]): c["CVV"] for c in cards}, [c["Card Number"] for c in cards]


def _run_cli(home: Path, *args: str, **env: str) -> subprocess.Popen:
    full_env = {**os.environ, "CDP_HOME": str(home), **env}
    return subprocess.Popen(
        [sys.executable, "-m", "app.cli", *args],
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _lake_counts(b: Backends) -> dict:
    return b.catalog.query(
        "SELECT count(*) AS n, count(DISTINCT txn_id) AS ids FROM transactions"
    ).to_pylist()[0]


def test_the_whole_path_reconciles_and_leaks_nothing(source, isolated_home):
    b = Backends()
    loaded = load_core_banking(source, b)
    assert loaded.customers == USERS and loaded.with_email == USERS
    report = run_batch(source, b)
    tx = report.files["credit_card_transactions-ibm_v2.csv"]
    assert tx["rows_read"] == tx["rows_accepted"] + tx["rows_quarantined"]
    assert tx["rows_quarantined"] == 0  # generated files are clean
    assert 0.03 < report.stream_rows / tx["rows_accepted"] < 0.07
    sent = produce(source, b)
    assert sent.sent == report.stream_rows
    sink = consume(b)
    assert sink.written == report.stream_rows
    assert _lake_counts(b) == {"n": tx["rows_accepted"], "ids": tx["rows_accepted"]}
    assert b.oltp.counts().transactions == report.stream_rows  # arrived through core banking

    scanner = LeakScanner(_pii_values(source))
    s = b.settings
    targets = [
        s.lake_dir,
        s.quarantine_dir,
        s.logs_dir,
        s.state_dir / "stream.sqlite",
        s.state_dir / "audit.sqlite",
        s.state_dir / "catalog.json",
    ]
    assert scanner.scan([t for t in targets if t.exists()]) == []
    # The scanner does see PII where it is allowed to be (the core-banking store): it is not blind.
    assert scanner.scan([s.state_dir / "oltp.sqlite3"])
    # ...but core banking holds no CVV (in any column, next to its card) and no clear PAN, even in its WAL.
    cvvs, pans = _source_cvvs_and_pans(source)
    assert scan_core_banking(s.state_dir / "oltp.sqlite3", cvvs, pans) == []


def test_erasure_is_per_customer_and_audited(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    run_batch(source, b)
    rows = b.catalog.query("SELECT user_token, person_enc FROM customers ORDER BY user_token").to_pylist()
    fraud_ops = Caller("analyst-1", "fraud-ops")
    victim, other = rows[0], rows[1]
    assert b.vault.reveal(fraud_ops, victim["user_token"], {"person": victim["person_enc"]}, "fraud-alert")
    user = next(u for u in range(USERS) if b.protector.user_token(u) == victim["user_token"])
    with pytest.raises(AccessDenied):
        forget_customer(user, Caller("ds-1", "data-scientist"), b)
    erased = forget_customer(user, Caller("dpo-1", "privacy-officer"), b)
    assert erased.key_deleted and erased.core_banking_records >= 2
    with pytest.raises(CustomerErased):
        b.vault.reveal(fraud_ops, victim["user_token"], {"person": victim["person_enc"]}, "fraud-alert")
    assert b.vault.reveal(fraud_ops, other["user_token"], {"person": other["person_enc"]}, "fraud-alert")
    # Their token cannot be made any more; re-running the batch quarantines their rows as "erased"
    # (rows read = accepted + quarantined still) and writes nothing of them to the lake.
    with pytest.raises(CustomerErased):
        b.protector.user_token(user)
    report = run_batch(source, b)
    for table in ("customers", "cards", "transactions"):
        where = f"user_token = '{victim['user_token']}'"
        assert b.catalog.query(f"SELECT count(*) AS n FROM {table} WHERE {where}").to_pylist() == [{"n": 0}]
    reasons = pq.read_table(report.quarantine_path).to_pandas().groupby("file")["reason"].apply(set)
    assert {"erased"} <= reasons["sd254_users.csv"] and {"erased"} <= reasons["sd254_cards.csv"]
    assert "erased" in reasons[TRANSACTIONS_FILE]
    for stats in report.files.values():
        assert stats["rows_read"] == stats["rows_accepted"] + stats["rows_quarantined"]
    with pytest.raises(AccessDenied):
        b.vault.reveal(
            Caller("ds-2", "data-scientist"), other["user_token"], {"person": other["person_enc"]}, "analysis"
        )
    actions = [(r.action, r.outcome, r.role) for r in b.audit.records()]
    assert ("forget", "denied", "data-scientist") in actions
    assert ("forget", "allowed", "privacy-officer") in actions
    assert ("erase", "allowed", "privacy-officer") in actions  # the rest of the erasure, with its counts
    assert b.oltp.get_erasure(user) is not None  # core banking's tombstone: no reload brings them back
    assert ("reveal", "denied", "data-scientist") in actions
    assert b.audit.verify().ok


def test_audit_verify_names_the_tampered_record(source, isolated_home):
    b = Backends()
    load_core_banking(source, b)
    run_batch(source, b)
    rows = b.catalog.query("SELECT user_token, person_enc FROM customers").to_pylist()[:3]
    for r in rows:
        b.vault.reveal(Caller("a", "marketing"), r["user_token"], {"person": r["person_enc"]}, "campaign")
    assert b.audit.verify().ok
    db = b.settings.state_dir / "audit.sqlite"
    con = sqlite3.connect(db)
    triggers = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    for t in triggers:  # an attacker with file access drops the guards first
        con.execute(f'DROP TRIGGER "{t}"')
    table = con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '%audit%'"
    ).fetchone()[0]
    con.execute(f'UPDATE "{table}" SET actor = ? WHERE seq = 2', ("someone-else",))
    con.commit()
    con.close()
    result = Backends(Settings()).audit.verify()
    assert not result.ok and result.first_broken_seq == 2


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> bool:
    """SIGKILL `proc` as soon as `ready()` is true; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the job neither finished nor reached the kill point in time")


@pytest.mark.slow
def test_batch_job_killed_mid_run_resumes_without_loss_or_duplicates(source, isolated_home):
    env = {"CDP_BATCH_CHUNK_BYTES": str(128 << 10)}
    manifests = isolated_home / "lake" / Settings().lake_bucket / "_manifests" / "batch-transactions"
    kills = 0
    for _ in range(3):  # kill at three different points, then let it finish
        proc = _run_cli(isolated_home, "batch", str(source), **env)
        if _kill_when(proc, lambda done=kills: len(list(manifests.glob("*.json"))) > 2 + 3 * done):
            kills += 1
    assert kills >= 1, "the job always finished before it could be killed"
    done = _run_cli(isolated_home, "batch", str(source), **env)
    assert done.wait(timeout=300) == 0, done.stderr.read().decode()
    b = Backends()
    report = run_batch(source, b, chunk_bytes=128 << 10)  # a no-op re-run that reports the totals
    assert report.chunks_skipped == report.chunks
    tx = report.files["credit_card_transactions-ibm_v2.csv"]
    assert _lake_counts(b) == {"n": report.batch_rows, "ids": report.batch_rows}
    assert report.batch_rows + report.stream_rows == tx["rows_read"] - tx["rows_quarantined"]


@pytest.mark.slow
def test_stream_consumer_killed_mid_run_lands_every_record_once(source, isolated_home):
    b = Backends()
    report = run_batch(source, b)
    produce(source, b)
    landed = isolated_home / "state" / "lake-sink-landed.sqlite"

    def landed_rows() -> int:
        if not landed.exists():
            return 0
        try:
            with sqlite3.connect(landed, timeout=0.1) as con:
                return con.execute("SELECT count(*) FROM landed").fetchone()[0]
        except sqlite3.Error:
            return 0

    kills = 0
    for _ in range(3):
        proc = _run_cli(isolated_home, "stream", "consume", CDP_STREAM_BATCH_SIZE="20")
        if _kill_when(proc, lambda done=kills: landed_rows() > 100 * (done + 1)):
            kills += 1
    assert kills >= 1
    final = _run_cli(isolated_home, "stream", "consume", CDP_STREAM_BATCH_SIZE="20")
    assert final.wait(timeout=300) == 0, final.stderr.read().decode()
    total = report.batch_rows + report.stream_rows
    assert _lake_counts(Backends()) == {"n": total, "ids": total}


def test_access_request_export_is_complete_private_and_audited(source, isolated_home):
    import json
    import stat

    from cdp.corebanking.export import export_customer

    b = Backends()
    load_core_banking(source, b)
    run_batch(source, b)
    with pytest.raises(AccessDenied):
        export_customer(0, Caller("m-1", "marketing"), b)
    path = export_customer(0, Caller("dpo-1", "privacy-officer"), b)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    doc = json.loads(path.read_text())
    customer = b.oltp.get_customer(0)
    assert doc["core_banking"]["customer"]["person"] == customer["person"]  # in clear: it is their data
    assert doc["lake"]["transactions"] and doc["lake"]["customers"]
    text = path.read_text()
    for card in doc["core_banking"]["cards"]:
        assert "cvv" not in card and "card_number" not in card and len(card["card_number_last4"]) == 4
    full_pans = [
        c["Card Number"]
        for c in pv.read_csv(
            source / "sd254_cards.csv",
            convert_options=pv.ConvertOptions(column_types={"Card Number": "string"}),
        ).to_pylist()
        if c["User"] == 0
    ]
    assert all(pan not in text for pan in full_pans)
    outcomes = [(r.action, r.outcome) for r in b.audit.records() if r.action == "export"]
    assert outcomes == [("export", "denied"), ("export", "allowed")]
