"""Output guardrails: what a writer's slots must satisfy before anything reaches a customer.

Each check returns a reason code (a fixed word, never the text): `missing-slot`, `length`,
`placeholders`, `pii`, `link`, `credentials`, `language`. The rendered body is checked again for the
mandatory safety line and the exact placeholder set. A rejected output is replaced by the template's plain
wording by the composer, and the reasons are counted.
"""

from __future__ import annotations

import re

from cdp.compliance.pii_shapes import has_link, pii_kinds
from engagement.templates import ApprovedTemplate

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CREDENTIALS = re.compile(
    r"(?i)\b(pin|password|passcode|passwort|contrase\w*|cvv|cvc|security code|one[- ]time code|otp)\b"
)
STOP_WORDS = {
    "en": frozenset("dear hello hi the your you we a an to of and is this on if it was our us in at".split()),
    "es": frozenset("estimado estimada hola el la su de que en por si no y un una con le lo es".split()),
}  # fmt: skip
_LETTERS = re.compile(r"[A-Za-zÀ-ÿ]+")
_NON_LATIN = re.compile(r"[^\x00-\x7fÀ-ÿ‘’“”–—€]")


def slot_problems(template: ApprovedTemplate, slots: dict[str, str]) -> list[str]:
    """Reason codes of a writer's slots (empty: they may be used)."""
    problems: set[str] = set()
    for spec in template.slots:
        text = slots.get(spec.name)
        if not isinstance(text, str) or not text.strip():
            problems.add("missing-slot")
            continue
        if not spec.min_chars <= len(text) <= spec.max_chars:
            problems.add("length")
        found = _PLACEHOLDER.findall(text)
        if sorted(found) != sorted(spec.placeholders) or text.count("{") != len(found):
            problems.add("placeholders")
        if text.count("}") != len(found):
            problems.add("placeholders")
        if pii_kinds(_PLACEHOLDER.sub(" ", text)):
            problems.add("pii")
        if has_link(text):
            problems.add("link")
        if _CREDENTIALS.search(text):
            problems.add("credentials")
        if not in_language(text, template.language):
            problems.add("language")
    return sorted(problems)


def in_language(text: str, language: str) -> bool:
    """True when `text` is Latin script with at least one common word of `language`."""
    if _NON_LATIN.search(text):
        return False
    words = {w.lower() for w in _LETTERS.findall(_PLACEHOLDER.sub(" ", text))}
    return bool(words & STOP_WORDS.get(language, frozenset()))


def body_problems(template: ApprovedTemplate, body: str) -> list[str]:
    """Reason codes of a rendered body: the safety line must be there, the placeholders exactly the
    template's, no link and nothing PII-shaped."""
    problems: list[str] = []
    if template.safety_line not in body:
        problems.append("safety-line")
    if set(_PLACEHOLDER.findall(body)) != set(template.placeholders):
        problems.append("placeholders")
    if has_link(body):
        problems.append("link")
    if pii_kinds(_PLACEHOLDER.sub(" ", body)):
        problems.append("pii")
    return problems
