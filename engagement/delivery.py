"""Handing a message to the mail port: transient failures retried with exponential backoff, permanent
ones (or the last try) dead-lettered with the transport's reason code."""

from __future__ import annotations

import time
from collections.abc import Callable

from cdp.mail.port import Delivery, MailError, MailMessage, MailTransport


class DeadLetter(Exception):  # noqa: N818 - an outcome, not a crash
    """A message given up on: the reason code and how many tries were made."""

    def __init__(self, reason: str, attempts: int) -> None:
        super().__init__(f"dead-lettered after {attempts} tries: {reason}")
        self.reason = reason
        self.attempts = attempts


def deliver(
    transport: MailTransport,
    message: MailMessage,
    attempts: int,
    base_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[Delivery, int]:
    """(delivery, tries) of `message`; `DeadLetter` when it failed for good. Waits base, 2*base, ..."""
    for attempt in range(1, attempts + 1):
        try:
            return transport.send(message), attempt
        except MailError as e:
            if e.permanent or attempt == attempts:
                raise DeadLetter(e.reason, attempt) from None
            sleep(base_seconds * 2 ** (attempt - 1))
    raise DeadLetter("no-attempt", 0)  # attempts < 1
