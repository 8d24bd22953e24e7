"""Outbox adapter of the mail port (the default): one `<customer token>--<message_id>.eml` file per message,
mode 0600, in core banking's area under the home (`<home>/corebanking/outbox/`), which the lake-side leak
scan excludes like the OLTP store. The customer's token in the name lets erasure remove their e-mails
(`remove_customer_mail`), which hold their name and address.

A file appears whole or not at all (written to a private temporary file, flushed, then hard-linked to its
name, which fails if the name exists), so a repeated id is recognised and never written twice.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.mail.mime import to_bytes
from cdp.mail.port import Delivery, MailError, MailMessage

if TYPE_CHECKING:
    from cdp.settings import Settings

SUFFIX = ".eml"


def outbox_dir(settings: Settings) -> Path:
    """Core banking's outbox folder."""
    return settings.home / "corebanking" / "outbox"


class OutboxTransport:
    """Writes each message as an .eml file."""

    name = "outbox"

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxTransport:
        return cls(outbox_dir(settings))

    def path_of(self, message_id: str, customer_token: str = "") -> Path:
        prefix = f"{customer_token}--" if customer_token else ""
        return self.folder / f"{prefix}{message_id}{SUFFIX}"

    def send(self, message: MailMessage) -> Delivery:
        target = self.path_of(message.message_id, message.customer_token)
        if target.exists():
            return Delivery(message.message_id, self.name, target.name, duplicate=True)
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            data = to_bytes(message)
            fd, tmp = tempfile.mkstemp(prefix=".part-", dir=self.folder)  # mode 0600
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, target)
                duplicate = False
            except FileExistsError:
                duplicate = True
            finally:
                os.unlink(tmp)
        except OSError as e:
            raise MailError(f"outbox-{type(e).__name__}", permanent=False) from None
        return Delivery(message.message_id, self.name, target.name, duplicate=duplicate)


def remove_customer_mail(settings: Settings, customer_token: str) -> int:
    """Delete every outbox e-mail of one customer (at erasure); returns how many."""
    folder = outbox_dir(settings)
    if not customer_token or not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f"{customer_token}--*{SUFFIX}"):
        path.unlink(missing_ok=True)
        removed += 1
    return removed
