"""PII-shaped strings in free text: card numbers, e-mail addresses, phone numbers, IBANs, and links.

Used on both sides of a text model: every prompt is checked before it leaves, every answer before it is
sent to a customer. Findings are kinds only (never the matched text), so a report cannot leak what it found.
"""

from __future__ import annotations

import re

from cdp.compliance.leakscan import luhn_valid

# 13-19 digits, optionally grouped by spaces or dashes, standing alone
_CARD = re.compile(r"(?<![\w.])\d(?:[ -]?\d){12,18}(?!\w)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
# +1 555 123 4567, (555) 123-4567, 555.123.4567, 5551234567: 10+ digits with phone separators
_PHONE = re.compile(r"(?<!\w)(?:\+\d{1,3}[ .-]?)?(?:\(\d{2,4}\)[ .-]?|\d{2,4}[ .-])?\d{3,4}[ .-]?\d{4}(?!\w)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_LONG_DIGITS = re.compile(r"\d{7,}")
_LINK = re.compile(
    r"(?i)(?:\b[a-z][a-z0-9+.-]*://|\bwww\.|\bmailto:|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\."
    r"(?:com|net|org|io|co|bank|info|biz|ly|me|app|link|xyz|ru|cn|uk|de|fr|us)\b(?:/\S*)?)"
)


def pii_kinds(text: str) -> list[str]:
    """The kinds of PII-shaped strings in `text` (card_number, email, phone, iban, digits), sorted."""
    kinds: set[str] = set()
    for m in _CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group())
        if luhn_valid(digits):
            kinds.add("card_number")
    if _EMAIL.search(text):
        kinds.add("email")
    if _PHONE.search(text):
        kinds.add("phone")
    if _IBAN.search(text):
        kinds.add("iban")
    if _LONG_DIGITS.search(text):
        kinds.add("digits")
    return sorted(kinds)


def has_link(text: str) -> bool:
    """True when `text` holds anything a mail client could make a link of (URL, www., a domain)."""
    return _LINK.search(text) is not None
