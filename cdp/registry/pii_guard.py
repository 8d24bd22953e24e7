"""Refuse personal data in what the registry stores (params, tags, reasons, lineage, model cards).

Registry entries are read by data scientists and copied to CI logs, so a card number or e-mail address in a
param or a review reason would leak it. The check reuses the platform's leak scanner's patterns; errors name
the field, never the value.
"""

from __future__ import annotations

from collections.abc import Mapping

from cdp.compliance.leakscan import LeakScanner
from cdp.registry.port import InvalidRegistrationError

_SCANNER = LeakScanner()


def ensure_no_pii(values: Mapping[str, object], what: str) -> None:
    """Raise `InvalidRegistrationError` if any value (or key) looks like a card number or an e-mail."""
    for key, value in values.items():
        for text in (str(key), str(value)):
            finding = next(iter(_SCANNER.scan_text(text, what, str(key))), None)
            if finding is not None:
                raise InvalidRegistrationError(f"{what} {key!r}: looks like personal data ({finding.kind})")


def document_texts(value: object) -> list[str]:
    """Keys, strings and integers of a JSON-like document, for the PII scan: the 16 decimals of a float
    figure are not a card number, but a card number stored as an integer still is."""
    if isinstance(value, Mapping):
        return [t for k, v in value.items() for t in (str(k), *document_texts(v))]
    if isinstance(value, list | tuple):
        return [t for v in value for t in document_texts(v)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    return []
