"""Local checkpoint store: one JSON line per checkpoint in an append-only file (mode 0600, fsync'd)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cdp.filesync import sync_folder
from cdp.security.audit.checkpoints.port import Checkpoint, CheckpointUnreadable

if TYPE_CHECKING:
    from cdp.settings import Settings

FILE = "audit-checkpoints.jsonl"  # in the state folder

_TAIL = 4096  # bytes read from the end to find the last line (a checkpoint line is ~200 bytes)


class LocalCheckpointFile:
    """`AuditCheckpoints` in a JSON-lines file, written with O_APPEND and fsync; `latest()` reads only
    the file's tail. A last line without its newline (a write cut by a crash) is ignored."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalCheckpointFile:
        """The platform's checkpoint file, `<state_dir>/audit-checkpoints.jsonl`."""
        return cls(settings.state_dir / FILE)

    def append(self, checkpoint: Checkpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = checkpoint.to_json().encode() + b"\n"
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            st = os.fstat(fd)
            if st.st_mode & 0o077:
                os.fchmod(fd, 0o600)
            if st.st_size and os.pread(fd, 1, st.st_size - 1) != b"\n":
                line = b"\n" + line  # close a torn last line so this one stays whole
            os.write(fd, line)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        if st.st_size == 0:
            sync_folder(self.path.parent)

    def latest(self) -> Checkpoint | None:
        try:
            with open(self.path, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                f.seek(max(0, size - _TAIL))
                tail = f.read()
        except FileNotFoundError:
            return None
        complete = tail.split(b"\n")[:-1]  # what follows the last newline is a torn write (or nothing)
        if size > _TAIL:
            complete = complete[1:]  # the first piece may be the end of an earlier line
        for raw in reversed(complete):
            if raw.strip():
                return Checkpoint.from_json(raw)
        if size > _TAIL:
            raise CheckpointUnreadable("audit checkpoint file does not end in a checkpoint line")
        return None  # empty, or only a torn first write
