"""How the CLI ends on an error: one line, no traceback, no data values.

Known platform errors (bad source files, refused keys, store and catalog errors, missing or unreadable
files) have messages written to name files, lines, fields, tokens and key versions only: they are printed
as `error: <message>` (exit 2). Anything else may carry data in its message (a parser quoting a CSV value,
say), so only its type is printed, with a reference into `<home>/logs/cli-errors.log` (mode 0600), which
holds the exception types and the stack (files, lines, functions), never an exception message (exit 1).
"""

from __future__ import annotations

import os
import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

ERROR_LOG = "cli-errors.log"
KNOWN_EXIT = 2
UNEXPECTED_EXIT = 1


def known_error_types() -> tuple[type[BaseException], ...]:
    """Error types whose messages are written PII-free (imported only when an error is being reported)."""
    from cdp.apikeys.port import ApiKeyError
    from cdp.catalog.port import CatalogError
    from cdp.ibm.rows import SourceFormatError
    from cdp.objectstore.port import ObjectStoreError
    from cdp.oltp.port import LegacyStoreError
    from cdp.registry.port import RegistryError
    from cdp.security.errors import SecurityError
    from cdp.stream.port import StreamError

    return (
        SourceFormatError,
        SecurityError,
        CatalogError,
        ObjectStoreError,
        LegacyStoreError,
        StreamError,
        ApiKeyError,
        RegistryError,
        FileNotFoundError,
        PermissionError,
        IsADirectoryError,
        NotADirectoryError,
    )


def report_error(error: BaseException, logs_dir: Path | None) -> tuple[str, int]:
    """(the one line to print, the exit code) for an error that ended a command; logs it first."""
    reference = uuid.uuid4().hex[:12]
    known = isinstance(error, known_error_types()) or _bad_settings(error)
    log = _log(error, logs_dir, reference, message=_one_line(error) if known else None)
    if known:
        return f"error: {_one_line(error)}", KNOWN_EXIT
    where = f"; details in {log} (reference {reference})" if log else ""
    return f"error: unexpected {type(error).__name__}{where}", UNEXPECTED_EXIT


def _bad_settings(error: BaseException) -> bool:
    """The settings failed validation: the message names a CDP_ variable and its value, no data."""
    from pydantic import ValidationError

    return isinstance(error, ValidationError) and error.title == "Settings"


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        text = f"{error.strerror or type(error).__name__}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


def _log(error: BaseException, logs_dir: Path | None, reference: str, message: str | None) -> Path | None:
    """Append the error's types and stack (no exception messages) to the 0600 CLI error log."""
    if logs_dir is None:  # the settings themselves could not be read
        return None
    lines = [f"{datetime.now(UTC).isoformat(timespec='seconds')} reference {reference}"]
    if message is not None:
        lines.append(f"  {type(error).__name__}: {message}")
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(f"  {type(current).__module__}.{type(current).__qualname__}")
        for frame in traceback.extract_tb(current.__traceback__):
            lines.append(f"    {frame.filename}:{frame.lineno} in {frame.name}")
        current = current.__cause__ or current.__context__
    try:
        logs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = logs_dir / ERROR_LOG
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as f:
            f.write("\n".join(lines) + "\n")
        return path
    except OSError:
        return None
