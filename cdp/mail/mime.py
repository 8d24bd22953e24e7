"""The RFC 5322 form of a message (the outbox's .eml files and SMTP's DATA)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from cdp.mail.port import MailMessage


def to_email(message: MailMessage, when: datetime | None = None) -> EmailMessage:
    """`message` as an e-mail: plain text, UTF-8, its Message-ID, no links."""
    mail = EmailMessage()
    mail["Message-ID"] = message.header_id
    mail["From"] = message.sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = format_datetime(when or datetime.now(UTC))
    mail.set_content(message.body, charset="utf-8")
    return mail
