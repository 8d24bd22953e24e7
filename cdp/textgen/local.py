"""The default writer: deterministic wording from the phrasebook, no network, no model.

It never sends a prompt anywhere, so it builds none; it still refuses a context the prompt builder would
refuse, so that switching to a model writer never changes what is allowed in.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import TYPE_CHECKING

from cdp.textgen.phrasebook import PHRASES
from cdp.textgen.port import PromptRefused, TextGenError, WriteRequest, Written
from cdp.textgen.prompt import context_problem

if TYPE_CHECKING:
    from cdp.settings import Settings


class TemplateWriter:
    """Fills slots from the phrasebook, picking a variant by template, slot, tone and segment."""

    name = "template"

    def __init__(self, phrases: dict[tuple[str, str, str], tuple[str, ...]] | None = None) -> None:
        self.phrases = PHRASES if phrases is None else phrases

    @classmethod
    def from_settings(cls, settings: Settings) -> TemplateWriter:
        return cls()

    def write(self, request: WriteRequest) -> Written:
        problem = context_problem(dict(request.context))
        if problem:
            raise PromptRefused(f"context refused: {problem}")
        values: defaultdict[str, str] = defaultdict(lambda: "unknown", request.context)
        slots: dict[str, str] = {}
        for slot in request.slots:
            variants = self.phrases.get((request.template_id, slot.name, request.language))
            if not variants:
                raise TextGenError(f"no wording for slot {slot.name!r} in language {request.language!r}")
            key = f"{request.template_id}|{slot.name}|{request.tone}|{request.context.get('segment', '')}"
            pick = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big")
            slots[slot.name] = variants[pick % len(variants)].format_map(values)
        return Written(slots=slots, writer=self.name)
