"""The RFC 5322 bytes of a message (the outbox's .eml files and SMTP's DATA): plain text, UTF-8,
quoted-printable, its Message-ID; non-ASCII headers as RFC 2047 words.

Written by hand rather than with `email.message.EmailMessage`, whose header objects cost milliseconds per
message; the result parses the same (the contract tests read it back with the standard parser).
"""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime

from cdp.mail.port import MailMessage


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def to_bytes(message: MailMessage, when: datetime | None = None) -> bytes:
    """`message` as the bytes of an e-mail (CRLF line ends)."""
    body = message.body.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    headers = (
        f"Message-ID: {message.header_id}\r\n"
        f"From: {_header(message.sender)}\r\n"
        f"To: {_header(message.recipient)}\r\n"
        f"Subject: {_header(message.subject)}\r\n"
        f"Date: {format_datetime(when or datetime.now(UTC))}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return headers.encode("ascii") + binascii.b2a_qp(body, istext=False, header=False).replace(b"\n", b"\r\n")
