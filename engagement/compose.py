"""Compose one notice: scanned prompt -> writer -> guardrails -> approved template, or the plain wording.

What is kept of a composition is PII-free by construction: the template key, the writer, the context
(closed-vocabulary words), SHA-256 hashes and lengths of the prompt and of the answer, the fallback flag and
the guardrails' reason codes. With the context and the template version an audit rebuilds the same prompt
and checks its hash. The log line carries the same fields.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from cdp.textgen.port import PromptRefused, TextGenError, TextWriter, WriteRequest
from cdp.textgen.prompt import build_prompt
from engagement.guardrails import body_problems, slot_problems
from engagement.templates import ApprovedTemplate

log = logging.getLogger("engagement.compose")


@dataclass(frozen=True, slots=True)
class Composition:
    """A composed notice: subject and body with placeholders, and what an audit needs to replay it."""

    template: str
    subject: str
    body: str
    writer: str
    context_json: str
    prompt_sha256: str
    prompt_chars: int
    output_sha256: str
    output_chars: int
    fallback: bool
    reasons: tuple[str, ...] = ()


@dataclass
class ComposeCounts:
    """Compositions, fallbacks and rejection reasons of one run."""

    composed: int = 0
    fallbacks: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class Composer:
    """Composes notices with one writer, counting fallbacks."""

    def __init__(self, writer: TextWriter) -> None:
        self.writer = writer
        self.counts = ComposeCounts()

    def compose(
        self, template: ApprovedTemplate, context: Mapping[str, str], reply_code: str = "", tone: str = "calm"
    ) -> Composition:
        """The notice of `context` in `template`; never raises for a writer's failure (plain wording)."""
        request = WriteRequest(
            template_id=template.id,
            template_version=template.version,
            slots=template.slots,
            context=dict(context),
            language=template.language,
            tone=tone,
        )
        reasons: list[str] = []
        slots: dict[str, str] = {}
        writer = self.writer.name
        try:
            prompt = build_prompt(request)  # every prompt is scanned, whoever writes
            written = self.writer.write(request)
            slots, writer = written.slots, written.writer
            reasons = slot_problems(template, slots)
        except PromptRefused:
            prompt, reasons = None, ["prompt-refused"]
        except TextGenError:
            reasons = ["writer-failed"]
        output = json.dumps(slots, sort_keys=True, ensure_ascii=False)
        if reasons:
            slots = dict(template.fallback)
        body = template.render(slots, reply_code)
        problems = body_problems(template, body)
        if problems:  # the approved wording itself fails: a broken template, never sent
            raise ValueError(f"template {template.key} fails its guardrails: {problems}")
        self.counts.composed += 1
        if reasons:
            self.counts.fallbacks += 1
            self.counts.reasons.update(reasons)
        composition = Composition(
            template=template.key,
            subject=template.subject,
            body=body,
            writer=writer,
            context_json=json.dumps(dict(sorted(context.items())), ensure_ascii=False),
            prompt_sha256=prompt.sha256 if prompt else "",
            prompt_chars=prompt.chars if prompt else 0,
            output_sha256=hashlib.sha256(output.encode()).hexdigest(),
            output_chars=len(output),
            fallback=bool(reasons),
            reasons=tuple(reasons),
        )
        log.info(
            "composed %s writer=%s prompt_sha256=%s prompt_chars=%d output_sha256=%s output_chars=%d "
            "fallback=%s reasons=%s",
            composition.template, writer, composition.prompt_sha256[:16], composition.prompt_chars,
            composition.output_sha256[:16], composition.output_chars, composition.fallback,
            ",".join(reasons) or "-",
        )  # fmt: skip
        return composition
