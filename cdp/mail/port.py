"""The mail port (SNS / SES / an SMTP relay / an outbox folder).

It sits on core banking's side of the line: a message holds the customer's address and a body whose
placeholders core banking has filled. Each message has a stable `message_id` (the notice's id); sending the
same id again must not deliver twice where the transport can tell (the outbox always can; an SNS FIFO topic
deduplicates by it for five minutes; SMTP cannot, so a crash between the relay's acceptance and the
notifier's record may repeat one message there). Failures raise `MailError` with a short reason code
(never an address or body) and whether a retry can help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

MESSAGE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{7,79}$")
MESSAGE_ID_DOMAIN = "notices.cdp.invalid"


class MailError(RuntimeError):
    """A message not delivered: `reason` is a code such as `smtp-550` or `sns-Throttling`."""

    def __init__(self, reason: str, permanent: bool) -> None:
        super().__init__(f"mail not delivered: {reason} ({'permanent' if permanent else 'transient'})")
        self.reason = reason
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class MailMessage:
    """One message to one customer."""

    message_id: str
    recipient: str
    sender: str
    subject: str
    body: str
    customer_token: str = ""  # core banking's own filing (the outbox's file names); never transmitted

    def __post_init__(self) -> None:
        if not MESSAGE_ID.match(self.message_id):
            raise ValueError("message_id must be 8-80 lowercase letters, digits or dashes")
        if "\n" in self.subject or "\r" in self.subject or "\n" in self.recipient:
            raise ValueError("subject and recipient must be one line")

    @property
    def header_id(self) -> str:
        """The RFC 5322 Message-ID of the message."""
        return f"<{self.message_id}@{MESSAGE_ID_DOMAIN}>"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message handed over: its id, the transport, the transport's reference, whether it was a repeat
    the transport recognised (nothing delivered again)."""

    message_id: str
    transport: str
    reference: str = ""
    duplicate: bool = False


@runtime_checkable
class MailTransport(Protocol):
    """Hands messages to the mail system."""

    name: str

    def send(self, message: MailMessage) -> Delivery:
        """Deliver `message` (once per `message_id` where the transport can tell); `MailError` if not."""
        ...
