"""Outbox adapter of the mail port (the default): one `<customer token>--<message_id>.eml` file per message,
mode 0600, in core banking's area under the home (`<home>/corebanking/outbox/`), which the lake-side leak
scan excludes like the OLTP store. The customer's token in the name lets erasure remove their e-mails
(`remove_customer_mail`), which hold their name and address.

A file appears whole or not at all (written to a private temporary file in `.parts/`, synced, then
hard-linked to its name, which fails if the name exists, and the folder synced), so a repeated id is
recognised and never written twice. `send_batch` does this for many messages with one sync of the files
and one of the folder. Temporary files carry the customer's token too, so erasure removes those a crash
left behind; the first batch of a process removes the ones left by a crash.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.filesync import sync_files, sync_folder
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
        self.parts = parts_dir(self.folder)
        self._swept = False

    @classmethod
    def from_settings(cls, settings: Settings) -> OutboxTransport:
        return cls(outbox_dir(settings))

    def path_of(self, message_id: str, customer_token: str = "") -> Path:
        prefix = f"{customer_token}--" if customer_token else ""
        return self.folder / f"{prefix}{message_id}{SUFFIX}"

    def send(self, message: MailMessage) -> Delivery:
        (outcome,) = self.send_batch([message])
        if isinstance(outcome, MailError):
            raise outcome
        return outcome

    def send_batch(self, messages: Sequence[MailMessage]) -> list[Delivery | MailError]:
        """Each message's delivery (or its `MailError`, returned), in order: the new files are written,
        made durable together, then linked to their names and the folder synced, so a name never shows
        an incomplete file, even after a power loss; ids already in the folder are repeats."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.parts.mkdir(exist_ok=True, mode=0o700)
            if not self._swept:
                _remove_stale_parts(self.parts)
                self._swept = True
        except OSError as e:
            return [_error(e) for _ in messages]
        outcomes: list[Delivery | MailError | None] = [None] * len(messages)
        written: list[tuple[int, int, str]] = []  # (index, fd, temporary path)
        try:
            for i, message in enumerate(messages):
                target = self.path_of(message.message_id, message.customer_token)
                if target.exists():
                    outcomes[i] = Delivery(message.message_id, self.name, target.name, duplicate=True)
                    continue
                try:
                    written.append((i, *self._write(to_bytes(message), message.customer_token)))
                except OSError as e:
                    outcomes[i] = _error(e)
            if written:
                self._publish(messages, written, outcomes)
        finally:
            for _, fd, tmp in written:
                _close_and_remove(fd, tmp)
        return [o if o is not None else MailError("outbox-unknown", permanent=False) for o in outcomes]

    def _write(self, data: bytes, customer_token: str) -> tuple[int, str]:
        """(fd, path) of a new private temporary file in the parts folder holding `data` (not synced)."""
        prefix = f"{customer_token}--" if customer_token else "-"
        fd, tmp = tempfile.mkstemp(prefix=prefix, dir=self.parts)  # mode 0600
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            _close_and_remove(fd, tmp)
            raise
        return fd, tmp

    def _publish(
        self,
        messages: Sequence[MailMessage],
        written: list[tuple[int, int, str]],
        outcomes: list[Delivery | MailError | None],
    ) -> None:
        """Sync the written files, link each to its name (an existing name: a repeat), sync the folder."""
        try:
            sync_files([fd for _, fd, _ in written])
        except OSError as e:
            for i, _, _ in written:
                outcomes[i] = _error(e)
            return
        for i, _, tmp in written:
            message = messages[i]
            target = self.path_of(message.message_id, message.customer_token)
            try:
                os.link(tmp, target)
                duplicate = False
            except FileExistsError:
                duplicate = True
            except OSError as e:
                outcomes[i] = _error(e)
                continue
            finally:
                _remove(tmp)
            outcomes[i] = Delivery(message.message_id, self.name, target.name, duplicate=duplicate)
        try:
            sync_folder(self.folder)
        except OSError as e:  # the names may not survive a power loss: not handed over
            for i, _, _ in written:
                outcomes[i] = _error(e)


def parts_dir(folder: Path) -> Path:
    """Where the outbox's files are written before they get their names (`<outbox>/.parts/`)."""
    return folder / ".parts"


def _remove_stale_parts(parts: Path) -> None:
    """Files a crashed writer left unpublished (the rerun writes them again). A concurrent writer whose
    file is removed before its link gets a transient error and retries its message."""
    for entry in os.scandir(parts):
        if entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)


def _error(e: OSError) -> MailError:
    return MailError(f"outbox-{type(e).__name__}", permanent=False)


def _close_and_remove(fd: int, tmp: str) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
    _remove(tmp)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_customer_mail(settings: Settings, customer_token: str) -> int:
    """Delete every outbox e-mail of one customer (at erasure), unpublished ones a crash left included;
    returns how many."""
    folder = outbox_dir(settings)
    if not customer_token or not folder.is_dir():
        return 0
    removed = 0
    for path in [
        *folder.glob(f"{customer_token}--*{SUFFIX}"),
        *parts_dir(folder).glob(f"{customer_token}--*"),
    ]:
        path.unlink(missing_ok=True)
        removed += 1
    return removed
