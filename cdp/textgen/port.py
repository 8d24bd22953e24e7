"""The text-generation port (Bedrock / an on-premises model server / a template writer).

A writer never writes a whole message: it fills the named slots of an approved, versioned template
(greeting, what happened, what to do) within their length bounds, from context that holds no personal
data. Fixed legal and safety lines belong to the template and are never generated. Placeholders such as
`{first_name}` are written as placeholders; only core banking fills them, after the text is checked.
Every adapter that sends a prompt anywhere builds it with `cdp.textgen.prompt.build_prompt`, which scans it
and raises `PromptRefused` before anything leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class TextGenError(RuntimeError):
    """The writer could not produce slots (service error, refusal, unparsable answer); the caller falls
    back to the template's plain wording. Messages hold no prompt or answer text."""


class PromptRefused(TextGenError):
    """The prompt failed the pre-send scan (a PII-shaped string or an unexpected context key)."""


@dataclass(frozen=True, slots=True)
class SlotSpec:
    """A slot the writer fills: its name, length bounds in characters, the placeholders it must hold."""

    name: str
    min_chars: int
    max_chars: int
    placeholders: tuple[str, ...] = ()
    purpose: str = ""  # one line telling the writer what the slot says


@dataclass(frozen=True, slots=True)
class WriteRequest:
    """What to write: the template (id and version), the slots, tone, language and de-identified context
    (a flat mapping of closed-vocabulary words such as `merchant_category: "grocery stores"`)."""

    template_id: str
    template_version: int
    slots: tuple[SlotSpec, ...]
    context: Mapping[str, str]
    language: str = "en"
    tone: str = "reassuring"


@dataclass(frozen=True, slots=True)
class Written:
    """The writer's slot texts (by slot name) and who wrote them (adapter and model id)."""

    slots: dict[str, str]
    writer: str
    prompt_sha256: str = ""  # hash of the prompt sent ("" when none was sent)
    prompt_chars: int = 0
    extra: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class TextWriter(Protocol):
    """Fills a template's slots."""

    name: str

    def write(self, request: WriteRequest) -> Written:
        """The slot texts of `request`; `TextGenError` when the writer fails."""
        ...
