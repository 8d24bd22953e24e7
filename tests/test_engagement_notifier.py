"""The alert consumer: one notice per card episode, daily caps, erased and opted-out customers skipped,
placeholders filled by core banking through an audited decrypt, retries then dead letters, and
exactly-once sending across a SIGKILL at any point."""

from __future__ import annotations

import email
import os
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest

from cdp.compliance.leakscan import LeakScanner
from cdp.corebanking.contact_preferences import ContactPreferenceStore
from cdp.corebanking.erasure import forget_customer
from cdp.mail import MailError
from cdp.mail.outbox import outbox_dir
from cdp.security.vault import Caller
from tests.notify_support import build_world, many_alerts, person, pii_values
from tests.notify_support import email as email_of

ROOT = Path(__file__).resolve().parent.parent


def outbox_files(world) -> list[Path]:
    folder = outbox_dir(world.b.settings)
    return sorted(folder.glob("*.eml")) if folder.exists() else []


def test_alerts_of_one_episode_make_one_notice_filled_by_core_banking():
    world = build_world(2)
    alerts = [world.alert(0, 0), world.alert(0, 20), world.alert(0, 70), world.alert(1, 5)]
    report = world.notifier().run(alerts)
    assert (report.alerts, report.notices, report.sent) == (4, 2, 2)
    files = outbox_files(world)
    assert len(files) == 2
    mails = {
        m["To"]: m for m in (email.message_from_bytes(f.read_bytes(), policy=policy.default) for f in files)
    }
    body = mails[email_of(0)].get_content()
    assert body.startswith(("Dear JanetA,", "Hello JanetA,"))
    assert "ending 1111" in body and "ending 1111" in mails[email_of(0)]["Subject"]
    assert "{first_name}" not in body and "{card_last4}" not in body
    assert "We will never ask for your PIN or password" in body
    assert person(0) not in body  # the first name only
    # the decrypt was audited: the notifier role, the notice's purpose, the name field only
    records = [r for r in world.b.audit.records() if r.action == "reveal" and r.role == "notifier"]
    assert len(records) == 2
    assert all(r.fields == ("person",) and r.outcome == "allowed" for r in records)
    assert all(r.details["purpose"] == "fraud-notice" for r in records)


def test_a_later_alert_in_the_window_joins_the_notified_episode_and_a_rerun_sends_nothing():
    world = build_world(1)
    world.notifier().run([world.alert(0, 0)])
    report = world.notifier().run([world.alert(0, 0), world.alert(0, 30), world.alert(0, 200)])
    assert (report.alerts, report.attached, report.notices, report.sent) == (2, 1, 1, 1)
    again = world.notifier().run([world.alert(0, 0), world.alert(0, 30), world.alert(0, 200)])
    assert (again.alerts, again.notices, again.sent) == (0, 0, 0)
    assert len(outbox_files(world)) == 2


def test_notices_per_customer_per_day_are_capped():
    world = build_world(1)
    alerts = [world.alert(0, m) for m in (0, 120, 240, 360)]  # four episodes on one day
    report = world.notifier(max_per_customer_per_day=2).run(alerts)
    assert (report.notices, report.capped, report.sent) == (2, 2, 2)


def test_an_erased_customer_gets_nothing_composed():
    world = build_world(2)
    alerts = [world.alert(0, 0), world.alert(1, 0)]
    forget_customer(1, Caller("dpo-1", "privacy-officer"), world.b)
    notifier = world.notifier()
    report = notifier.run(alerts)
    assert report.skipped == {"erased": 1} and report.notices == 1 and notifier.composer.counts.composed == 1
    assert [
        email.message_from_bytes(f.read_bytes(), policy=policy.default)["To"] for f in outbox_files(world)
    ] == [email_of(0)]


def test_a_customer_erased_after_composition_is_not_sent_to():
    world = build_world(2)
    notifier = world.notifier()
    notifier.compose_new([world.alert(0, 0), world.alert(1, 0)])
    forget_customer(1, Caller("dpo-1", "privacy-officer"), world.b)
    notifier.addressing.refresh()
    notifier.deliver_pending()
    assert notifier.report.sent == 1 and notifier.report.skipped == {"erased": 1}


def test_opted_out_customers_get_no_fraud_notice():
    world = build_world(2)
    ContactPreferenceStore.from_settings(world.b.settings).set(1, fraud_notices=False)
    report = world.notifier().run([world.alert(0, 0), world.alert(1, 0)])
    assert report.skipped == {"opted-out": 1} and report.sent == 1


class Flaky:
    """Fails `failures` times with `error`, then delivers into the real outbox."""

    name = "flaky"

    def __init__(self, inner, failures: int, error: MailError) -> None:  # noqa: ANN001
        self.inner, self.failures, self.error, self.calls = inner, failures, error, 0

    def send(self, message):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.inner.send(message)


def test_transient_failures_are_retried_with_backoff_then_dead_lettered():
    from cdp.mail.outbox import OutboxTransport

    world = build_world(2)
    box = OutboxTransport(outbox_dir(world.b.settings))
    waits: list[float] = []
    flaky = Flaky(box, 2, MailError("smtp-421", permanent=False))
    notifier = world.notifier(mail=flaky, send_attempts=3, retry_base_seconds=0.5)
    notifier.sleep = waits.append
    report = notifier.run([world.alert(0, 0)])
    assert report.sent == 1 and waits == [0.5, 1.0]
    dead = world.notifier(mail=Flaky(box, 99, MailError("smtp-550", permanent=True))).run([world.alert(1, 0)])
    assert dead.dead == 1 and dead.sent == 0
    assert notifier.ledger.con.execute("SELECT reason FROM notices WHERE status = 'dead'").fetchall() == [
        ("smtp-550",)
    ]


def test_the_notifier_state_and_logs_hold_no_pii(caplog):
    world = build_world(3)
    with caplog.at_level("DEBUG"):
        world.notifier().run(many_alerts(world, 2))
    scanner = LeakScanner(pii_values(3))
    assert scanner.scan([world.b.settings.state_dir / "notifier.sqlite"]) == []
    assert list(scanner.scan_text(caplog.text, "log", "text")) == []
    # the outbox is core banking's side: it does hold the names and addresses
    assert scanner.scan([outbox_dir(world.b.settings)])


@pytest.mark.parametrize(
    ("stage", "kill_after", "batch", "committed"),
    [
        ("send", 3, 64, 0), ("compose", 2, 64, 0), ("send", 1, 64, 0),
        ("send", 7, 5, 5),  # the first batch of 5 marked sent, killed inside the second
        ("send", 5, 5, 0),  # killed after the batch's last e-mail, before its mark
        ("compose", 10, 5, 8),  # the notices of the first two cards (8 alerts >= 5) committed together
    ],
)  # fmt: skip
def test_exactly_once_sending_across_a_sigkill(stage, kill_after, batch, committed):
    world = build_world(3)
    alerts = many_alerts(world)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NOTIFY_USERS": "3", "NOTIFY_BATCH": str(batch)}
    child = subprocess.run(
        [sys.executable, "-m", "tests.notify_support", stage, str(kill_after)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert child.returncode == -9, child.stderr[-2000:]
    sent_before = len(outbox_files(world))
    assert sent_before == (kill_after if stage == "send" else 0)
    before = world.notifier().ledger.statuses()
    if stage == "send":  # every notice recorded; the batches before the kill's marked sent
        expected = {"sent": committed, "pending": len(alerts) - committed}
    else:  # only the notices of the committed record batches
        expected = {"pending": committed}
    assert before == {k: v for k, v in expected.items() if v}
    unpublished = list(outbox_dir(world.b.settings).glob(".parts/*"))
    assert all(p.name.startswith("usr_") and "--" in p.name for p in unpublished)  # erasure finds them
    report = world.notifier().run(alerts)
    files = outbox_files(world)
    ids = [email.message_from_bytes(f.read_bytes(), policy=policy.default)["Message-ID"] for f in files]
    assert len(files) == len(set(ids)) == len(alerts)  # every episode once, none twice
    # the e-mails published in the batch the kill cut short are recognised as repeats, not sent again
    assert report.repeats == (kill_after - committed if stage == "send" else 0)
    assert report.sent == len(alerts) - (committed if stage == "send" else 0)
    statuses = world.notifier().ledger.statuses()
    assert statuses == {"sent": len(alerts)}
    assert list(outbox_dir(world.b.settings).glob(".parts/*")) == []  # the crash's leftovers removed


def test_erasure_removes_the_customers_e_mails_from_the_outbox():
    world = build_world(2)
    world.notifier().run([world.alert(0, 0), world.alert(1, 0)])
    assert len(outbox_files(world)) == 2
    report = forget_customer(1, Caller("dpo-1", "privacy-officer"), world.b)
    assert report.mails == 1
    remaining = [
        email.message_from_bytes(f.read_bytes(), policy=policy.default)["To"] for f in outbox_files(world)
    ]
    assert remaining == [email_of(0)]


def test_a_batch_decrypts_its_names_in_one_audit_append_one_record_per_customer():
    world = build_world(5)
    alerts = many_alerts(world, 2)  # 10 notices, two per customer
    checkpoints = world.b.audit.checkpoints
    before = list(world.b.audit.records())
    cp_before = checkpoints.latest().count if checkpoints.latest() else 0
    report = world.notifier(send_batch=4).run(alerts)
    assert report.sent == 10 and len(outbox_files(world)) == 10
    reveals = [r for r in world.b.audit.records() if r.action == "reveal"][len(before) :]
    # one audited decrypt per customer and purpose per run, whatever the batches
    assert sorted(r.customer_token for r in reveals) == sorted(world.user_token(u) for u in range(5))
    assert all(r.outcome == "allowed" and r.details["purpose"] == "fraud-notice" for r in reveals)
    assert world.b.audit.verify().ok
    signed = checkpoints.path.read_text().splitlines()
    # one checkpoint per batch that decrypted something (batches of 4, 4 and 2 notices), not per record
    assert checkpoints.latest().count == cp_before + 5 and len(signed) <= 1 + 3


class BatchingFlaky:
    """An outbox whose batches fail for the notices in `failing` (transient), whose single sends work."""

    name = "outbox"

    def __init__(self, inner, failing: set[str], permanent: bool = False) -> None:  # noqa: ANN001
        self.inner, self.failing, self.permanent, self.sends = inner, failing, permanent, 0

    def send(self, message):  # noqa: ANN001, ANN201
        self.sends += 1
        return self.inner.send(message)

    def send_batch(self, messages):  # noqa: ANN001, ANN201
        ok = self.inner.send_batch([m for m in messages if m.message_id not in self.failing])
        out, it = [], iter(ok)
        for m in messages:
            failed = m.message_id in self.failing
            out.append(MailError("outbox-OSError", permanent=self.permanent) if failed else next(it))
        return out


def test_a_notice_that_fails_in_a_batch_is_retried_alone_with_backoff_or_dead_lettered_if_permanent():
    from cdp.mail.outbox import OutboxTransport

    world = build_world(3)
    box = OutboxTransport(outbox_dir(world.b.settings))
    alerts = [world.alert(u, 0) for u in range(3)]
    notifier = world.notifier(send_attempts=3, retry_base_seconds=0.5)
    notifier.compose_new(alerts)
    failing = {notifier.ledger.pending()[1].notice_id}
    waits: list[float] = []
    notifier.mail, notifier.sleep = BatchingFlaky(box, failing), waits.append
    notifier.deliver_pending()
    assert notifier.report.sent == 3 and notifier.mail.sends == 1 and waits == [0.5]
    tries = dict(notifier.ledger.con.execute("SELECT notice_id, attempts FROM notices").fetchall())
    assert tries[next(iter(failing))] == 2 and sorted(tries.values()) == [1, 1, 2]
    other = world.notifier()
    other.compose_new([world.alert(0, 60 * 24)])
    dead_id = other.ledger.pending()[0].notice_id
    other.mail = BatchingFlaky(box, {dead_id}, permanent=True)
    other.deliver_pending()
    assert other.report.dead == 1 and other.mail.sends == 0
    row = other.ledger.con.execute("SELECT status, reason FROM notices WHERE notice_id = ?", (dead_id,))
    assert row.fetchone() == ("dead", "outbox-OSError")
