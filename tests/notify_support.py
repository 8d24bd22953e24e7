"""A small core banking (customers, cards, protected names) and alerts for the notifier's tests; the
child-process entry point of the SIGKILL test."""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta

from cdp.backends import Backends
from cdp.corebanking.cards import card_for_store
from cdp.corebanking.contact_preferences import ContactPreferenceStore
from cdp.corebanking.notices import NoticeAddressing
from cdp.mail.outbox import OutboxTransport, outbox_dir
from cdp.security.vault import Caller
from cdp.textgen.local import TemplateWriter
from engagement.compose import Composer
from engagement.context import Alert
from engagement.ledger import Ledger
from engagement.notifier import Notifier, NotifyConfig
from engagement.templates import FRAUD_NOTICE_EN

NOTIFIER = Caller("notifier-service", "notifier")
T0 = datetime(2019, 11, 3, 9, 0)
PANS = ["4111111111111111", "5500005555555559", "4012888888881881", "4222222222222", "5105105105105100"]


def person(user: int) -> str:
    return f"Janet{chr(65 + user)} Doerington"


def email(user: int) -> str:
    return f"janet{user}.doerington@example.com"


def pii_values(users: int) -> list[str]:
    return [v for u in range(users) for v in (person(u), person(u).split()[0], email(u), PANS[u % len(PANS)])]


@dataclass
class World:
    b: Backends
    users: int
    names: dict[str, str]

    def user_token(self, user: int) -> str:
        return self.b.protector.user_token(user)

    def card_token(self, user: int) -> str:
        return self.b.protector.card_token(user, 0)

    def addressing(self) -> NoticeAddressing:
        prefs = ContactPreferenceStore.from_settings(self.b.settings)
        return NoticeAddressing(
            self.b.oltp, self.b.protector, self.b.vault, prefs, NOTIFIER, lambda: self.names
        )

    def notifier(self, mail=None, writer=None, **config) -> Notifier:  # noqa: ANN001
        return Notifier(
            Ledger(self.b.settings.state_dir / "notifier.sqlite"),
            Composer(writer or TemplateWriter()),
            self.addressing(),
            mail or OutboxTransport(outbox_dir(self.b.settings)),
            FRAUD_NOTICE_EN,
            NotifyConfig(**{"retry_base_seconds": 0, **config}),
            sleep=lambda s: None,
        )

    def alert(self, user: int, minutes: float, n: int | None = None, **changes) -> Alert:
        values = dict(
            txn_id=f"{self.card_token(user)[-8:]}-{n if n is not None else int(minutes)}",
            user_token=self.user_token(user), card_token=self.card_token(user),
            ts=T0 + timedelta(minutes=minutes), amount_cents=18_250, mcc=5411, channel="online",
            merchant_state=None, probability=0.9, reasons=("amount_z",),
        )  # fmt: skip
        values.update(changes)
        return Alert(**values)


def build_world(users: int = 3) -> World:
    b = Backends()
    b.oltp.upsert_customers([{"user": u, "person": person(u), "email": email(u)} for u in range(users)])
    cards = [{"user": u, "card_index": 0, "card_number": PANS[u % len(PANS)]} for u in range(users)]
    b.oltp.upsert_cards([card_for_store(b.protector, c) for c in cards])
    names = {}
    for u in range(users):
        token = b.protector.user_token(u)
        names[token] = b.protector.encrypt_field(token, "person", person(u))
    return World(b, users, names)


def many_alerts(world: World, per_user: int = 4) -> list[Alert]:
    """`per_user` episodes a day apart for every customer (one notice each, within the daily cap)."""
    return [
        world.alert(u, minutes=day * 24 * 60, n=day) for u in range(world.users) for day in range(per_user)
    ]


def child_run(stage: str, kill_after: int) -> None:
    """Run the notifier over `many_alerts` and SIGKILL this process right after the `kill_after`-th
    ledger record (stage "compose") or e-mail published in the outbox (stage "send": mid-batch, before
    the batch is marked sent). `NOTIFY_BATCH` sets the notices handed over per batch."""
    world = World(Backends(), int(os.environ["NOTIFY_USERS"]), {})
    world.names = {world.user_token(u): None for u in range(world.users)}  # unused: names fall back
    count = [0]

    def bump() -> None:
        count[0] += 1
        if count[0] == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    if stage == "send":
        real_link = os.link

        def link(src, dst, **kwargs):  # noqa: ANN001, ANN003, ANN202 - the outbox's publishing step
            real_link(src, dst, **kwargs)
            bump()

        os.link = link  # this child process only
    notifier = world.notifier(send_batch=int(os.environ.get("NOTIFY_BATCH", "64")))
    if stage == "compose":
        real_record = notifier.ledger.record

        def record(row, txn_ids):  # noqa: ANN001, ANN202
            real_record(row, txn_ids)
            bump()

        notifier.ledger.record = record  # type: ignore[method-assign]
    notifier.run(many_alerts(world))
    sys.exit(0)


if __name__ == "__main__":
    child_run(sys.argv[1], int(sys.argv[2]))
