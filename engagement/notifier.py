"""The alert consumer: new fraud alerts -> one notice per card episode -> the customer's mailbox, once.

1. Alerts not yet in the ledger are grouped per card: alerts closer than the episode window (event time)
   make one episode; an alert close to the card's last notified episode joins it (recorded, nothing sent).
2. Each new episode gets one notice, unless its customer is gone (erased), opted out of fraud notices,
   or already got the day's most notices (capped). The notice is composed (text writer, guardrails,
   approved template) and recorded with its alerts: `pending`; the notices of a batch of alerts commit
   together (a crash before that commit records none of them: they are composed again on the rerun).
3. Pending notices are delivered in batches (group commit): filled by core banking (placeholders; the
   batch's names decrypted in one audited call, one audit record per customer), handed to the mail port
   (the outbox takes the whole batch and makes it durable with one sync), retried with backoff, then
   marked `sent`, or `dead` with the transport's reason, in one transaction per batch. Transports that
   cannot recognise a repeat (SMTP) are sent to and marked one message at a time.
A notice's id comes from its card and first transaction, so a rerun after a crash at any point finds the
same notice (recorded: sent again with the same id, which the outbox and SNS FIFO recognise; not yet
recorded: composed again under the same id). A crash inside a batch leaves it pending: the rerun finds
the e-mails already published and counts them as repeats, so none is sent twice and none is lost.
Durability: the ledger is SQLite in WAL mode with synchronous=NORMAL, so every commit survives the process
being killed; a power loss may undo the last commits (the notices go back to pending and are recognised as
repeats), while an e-mail's file and name are synced before its batch is marked sent. Nothing the notifier
logs or keeps holds personal data.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import groupby

from cdp.corebanking.notices import FRAUD_PURPOSE, OFFER_PURPOSE, Addressee, NoticeAddressing
from cdp.feedback.replies import ReplyBook
from cdp.mail.port import Delivery, MailError, MailMessage, MailTransport
from cdp.security.errors import CustomerErased
from engagement.compose import Composer
from engagement.context import Alert, CustomerKind, fraud_context
from engagement.delivery import DeadLetter, deliver
from engagement.ledger import Ledger, Mark, NoticeRecord
from engagement.templates import ApprovedTemplate

log = logging.getLogger("engagement.notifier")

_CODE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I/O, no digits: never read as a number


@dataclass(frozen=True, slots=True)
class NotifyConfig:
    episode: timedelta = timedelta(minutes=60)
    max_per_customer_per_day: int = 2
    send_attempts: int = 4
    retry_base_seconds: float = 0.5
    sender: str = "alerts@bank.example"
    send_batch: int = 64  # notices handed over and marked together (group commit)


@dataclass
class NotifyReport:
    """What one run did (counts only)."""

    alerts: int = 0  # new alerts read
    notices: int = 0  # notices composed
    attached: int = 0  # alerts that joined an episode already notified
    capped: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # by reason: erased, opted-out, ...
    sent: int = 0
    repeats: int = 0  # sends the transport recognised as already delivered
    dead: int = 0
    fallbacks: int = 0
    sent_ids: list[str] = field(default_factory=list)


def notice_id(card_token: str, first_txn_id: str) -> str:
    """The stable id of the notice of the episode starting with `first_txn_id` on `card_token`."""
    return "ntc-" + hashlib.sha256(f"{card_token}|{first_txn_id}".encode()).hexdigest()[:24]


def reply_code() -> str:
    """A fresh reply code, e.g. "KXQM-TRPD" (24^8 codes)."""
    letters = "".join(secrets.choice(_CODE_LETTERS) for _ in range(8))
    return f"{letters[:4]}-{letters[4:]}"


class Notifier:
    """Consumes alerts into notices and delivers them."""

    def __init__(
        self,
        ledger: Ledger,
        composer: Composer,
        addressing: NoticeAddressing,
        mail: MailTransport,
        template: ApprovedTemplate,
        config: NotifyConfig = NotifyConfig(),
        kind_of: Callable[[str], CustomerKind] = lambda token: CustomerKind(),
        sleep: Callable[[float], None] = time.sleep,
        replies: ReplyBook | None = None,
    ) -> None:
        self.ledger = ledger
        self.composer = composer
        self.addressing = addressing
        self.mail = mail
        self.template = template
        self.config = config
        self.kind_of = kind_of
        self.sleep = sleep
        self.replies = replies
        self.report = NotifyReport()

    def run(self, alerts: Iterable[Alert]) -> NotifyReport:
        """Compose the notices of the new alerts, then deliver every pending notice."""
        self.addressing.refresh()  # customers loaded or erased since the last run; no name kept across runs
        self.compose_new(alerts)
        self.deliver_pending()
        self.report.fallbacks = self.composer.counts.fallbacks
        return self.report

    # -- compose ----------------------------------------------------------------------------------------
    def compose_new(self, alerts: Iterable[Alert]) -> None:
        every = list(alerts)
        seen = self.ledger.seen(a.txn_id for a in every)
        new = sorted((a for a in every if a.txn_id not in seen), key=lambda a: (a.card_token, a.ts, a.txn_id))
        self.report.alerts += len(new)
        cards = groupby(new, key=lambda a: a.card_token)
        while True:  # the notices of about `send_batch` alerts recorded in one ledger transaction
            with self.ledger.batch():
                taken = 0
                for card_token, card_alerts in cards:
                    group = list(card_alerts)
                    self._card(card_token, group)
                    taken += len(group)
                    if taken >= self.config.send_batch:
                        break
            if not taken:
                return

    def _card(self, card_token: str, alerts: list[Alert]) -> None:
        latest = self.ledger.latest_of_card(card_token)
        current = (latest[0], datetime.fromisoformat(latest[1])) if latest else None
        window = self.config.episode
        group: list[Alert] = []
        for a in alerts:
            if group and a.ts - group[-1].ts <= window:
                group.append(a)
                continue
            if group:
                current = self._new_episode(group)
                group = []
            if current and abs(a.ts - current[1]) <= window:
                if self.replies is not None:
                    self.replies.extend(current[0], [a.txn_id])
                self.ledger.attach(current[0], [a.txn_id], a.ts.isoformat())
                self.report.attached += 1
                current = (current[0], max(current[1], a.ts))
                continue
            group = [a]
        if group:
            self._new_episode(group)

    def _new_episode(self, group: Sequence[Alert]) -> tuple[str, datetime]:
        first, last = group[0], group[-1]
        nid = notice_id(first.card_token, first.txn_id)
        row: dict[str, object] = {
            "notice_id": nid, "kind": "fraud", "user_token": first.user_token,
            "card_token": first.card_token, "day": first.ts.date().isoformat(),
            "first_ts": first.ts.isoformat(), "last_ts": last.ts.isoformat(),
        }  # fmt: skip
        txn_ids = [a.txn_id for a in group]
        addressee = self.addressing.addressee(first.user_token, first.card_token)
        if addressee is None:
            self._skip(row, txn_ids, "erased")
        elif not self.addressing.choices(addressee).fraud_notices:
            self._skip(row, txn_ids, "opted-out")
        elif self.ledger.count_for_day(first.user_token, row["day"]) >= self.config.max_per_customer_per_day:
            self.ledger.record({**row, "status": "capped", "reason": "daily-cap"}, txn_ids)
            self.report.capped += 1
        else:
            code = reply_code()
            c = self.composer.compose(
                self.template, fraud_context(group, self.kind_of(first.user_token)), code
            )
            if self.replies is not None:  # first: a crash before the ledger record leaves an unused code
                self.replies.issue(code, nid, txn_ids)
            self.ledger.record(
                {
                    **row, "status": "pending", "reply_code": code, "template": c.template,
                    "subject": c.subject, "body": c.body, "writer": c.writer,
                    "context_json": c.context_json, "prompt_sha256": c.prompt_sha256,
                    "prompt_chars": c.prompt_chars, "output_sha256": c.output_sha256,
                    "output_chars": c.output_chars, "fallback": int(c.fallback),
                    "guardrail_reasons": ",".join(c.reasons),
                },
                txn_ids,
            )  # fmt: skip
            self.report.notices += 1
        return nid, last.ts

    def _skip(self, row: dict[str, object], txn_ids: list[str], reason: str) -> None:
        self.ledger.record({**row, "status": "skipped", "reason": reason}, txn_ids)
        self.report.skipped[reason] += 1

    # -- deliver ----------------------------------------------------------------------------------------
    def deliver_pending(self) -> None:
        """Every pending notice, `send_batch` at a time (group commit, see `_deliver_batch`)."""
        pending = self.ledger.pending()
        size = self.config.send_batch
        for i in range(0, len(pending), size):
            self._deliver_batch(pending[i : i + size])

    def _deliver_batch(self, notices: Sequence[NoticeRecord]) -> None:
        """Deliver a batch of pending notices.

        The names the batch needs are decrypted in one audited call (one audit record per customer,
        appended together). A transport that takes batches (`send_batch`, the outbox: idempotent by id)
        gets them all at once and the outcomes are marked in one transaction: a crash before that commit
        leaves the batch pending, and the rerun's sends are recognised as repeats (nothing delivered
        twice, nothing lost). Other transports get one message at a time, each marked right after its
        send, so a crash repeats at most the one message a transport cannot recognise (SMTP).
        """
        marks: list[Mark] = []
        ready = self._addressed(notices, marks)
        messages = self._filled(ready, marks)
        send_batch = getattr(self.mail, "send_batch", None)
        if callable(send_batch) and messages:
            outcomes = send_batch([m for _, m in messages])
            for (notice, message), outcome in zip(messages, outcomes, strict=True):
                marks.append(self._handed_over(notice, message, outcome))
            self.ledger.mark_many(marks)
            return
        self.ledger.mark_many(marks)
        for notice, message in messages:
            self.ledger.mark_many([self._handed_over(notice, message, None)])

    def _addressed(self, notices: Sequence[NoticeRecord], marks: list[Mark]) -> list[Addressed]:
        """The notices that may go out, with their customer and address; the others' marks added."""
        ready: list[Addressed] = []
        for notice in notices:
            addressee = self.addressing.addressee(notice.user_token, notice.card_token)
            if addressee is None:
                marks.append(self._skipped(notice, "erased"))
                continue
            choices = self.addressing.choices(addressee)
            offer = notice.kind == "offer"
            if not (choices.marketing if offer else choices.fraud_notices):
                marks.append(self._skipped(notice, "no-consent" if offer else "opted-out"))
                continue
            recipient = self.addressing.recipient(addressee)
            if not recipient:
                marks.append(self._dead(notice, "no-address", 0))
                continue
            ready.append(Addressed(notice, addressee, recipient, OFFER_PURPOSE if offer else FRAUD_PURPOSE))
        return ready

    def _filled(
        self, ready: Sequence[Addressed], marks: list[Mark]
    ) -> list[tuple[NoticeRecord, MailMessage]]:
        """The messages of `ready`, placeholders filled by core banking (the batch's names decrypted in one
        audited call per purpose); a customer erased meanwhile is skipped."""
        for purpose in {r.purpose for r in ready}:
            named = [r.addressee for r in ready if r.purpose == purpose and r.needs_name]
            if named:
                self.addressing.prepare(named, purpose)
        messages = []
        for r in ready:
            notice = r.notice
            try:
                subject, body = self.addressing.fill(r.addressee, [notice.subject, notice.body], r.purpose)
            except CustomerErased:
                marks.append(self._skipped(notice, "erased"))
                continue
            message = MailMessage(
                notice.notice_id, r.recipient, self.config.sender, subject, body,
                customer_token=notice.user_token,
            )  # fmt: skip
            messages.append((notice, message))
        return messages

    def _handed_over(
        self, notice: NoticeRecord, message: MailMessage, outcome: Delivery | MailError | None
    ) -> Mark:
        """The mark of one message: `outcome` is a batch's result for it (None: not sent yet); a
        transient failure is retried with backoff through `send`, which recognises a repeat."""
        cfg = self.config
        if isinstance(outcome, Delivery):
            delivery, tries = outcome, 1
        elif isinstance(outcome, MailError) and outcome.permanent:
            return self._dead(notice, outcome.reason, 1)
        else:
            first = 1 if outcome is not None else 0
            if first and cfg.send_attempts <= 1:
                return self._dead(notice, outcome.reason, 1)  # type: ignore[union-attr]
            if first:
                self.sleep(cfg.retry_base_seconds)
            try:
                delivery, tries = deliver(
                    self.mail,
                    message,
                    cfg.send_attempts - first,
                    cfg.retry_base_seconds * 2**first,
                    self.sleep,
                )
            except DeadLetter as dead:
                return self._dead(notice, dead.reason, dead.attempts + first)
            tries += first
        self.report.sent += 1
        self.report.repeats += int(delivery.duplicate)
        self.report.sent_ids.append(notice.notice_id)
        log.info("notice %s sent via %s after %d tries", notice.notice_id, delivery.transport, tries)
        return Mark(notice.notice_id, "sent", transport_ref=delivery.reference, attempts=tries)

    def _skipped(self, notice: NoticeRecord, reason: str) -> Mark:
        self.report.skipped[reason] += 1
        log.info("notice %s not sent: %s", notice.notice_id, reason)
        return Mark(notice.notice_id, "skipped", reason=reason)

    def _dead(self, notice: NoticeRecord, reason: str, attempts: int) -> Mark:
        self.report.dead += 1
        log.warning("notice %s dead-lettered: %s", notice.notice_id, reason)
        return Mark(notice.notice_id, "dead", reason=reason, attempts=attempts)


@dataclass(frozen=True, slots=True)
class Addressed:
    """A pending notice that may go out: its customer, their address and the purpose of the fill."""

    notice: NoticeRecord
    addressee: Addressee
    recipient: str
    purpose: str

    @property
    def needs_name(self) -> bool:
        return "{first_name}" in self.notice.subject or "{first_name}" in self.notice.body
