"""No personal data in a tracked run: keys, values and text files are scanned before they are logged.

It reuses the platform's leak scanner (card numbers, e-mail addresses, CVV/PAN-like column names);
refusals name the key or file, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cdp.compliance.leakscan import LeakScanner
from cdp.tracking.port import TrackingError

_SCANNER = LeakScanner()
_SCANNED_SUFFIXES = {".json", ".md", ".txt", ".csv", ".html", ".yaml", ".yml", ".log", ".parquet"}


def check_values(values: Mapping[str, object], what: str) -> None:
    """`TrackingError` when a key or value looks like personal data."""
    for key, value in values.items():
        for text in (str(key), str(value)):
            finding = next(iter(_SCANNER.scan_text(text, what, str(key))), None)
            if finding is not None:
                raise TrackingError(f"{what} {key!r} looks like personal data ({finding.kind}): not logged")


def check_files(path: Path) -> None:
    """`TrackingError` when a text, JSON or Parquet file under `path` holds personal data."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file.suffix.lower() not in _SCANNED_SUFFIXES:
            continue  # images, model binaries
        finding = next(iter(_SCANNER.scan_file(file)), None)
        if finding is not None:
            raise TrackingError(f"file {file.name} holds personal data ({finding.kind}): not logged")
