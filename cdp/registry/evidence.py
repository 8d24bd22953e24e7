"""Evidence kept with a model version: small JSON documents by kind (`challenger`, `shadow`, `approval`).

Both registries store them beside the version (MLflow: a model-version tag per kind; SageMaker: one S3
object per kind next to the version's artifacts). This module checks and encodes them the same way for
both: a kind is a short lowercase name, a document is a JSON object of at most `MAX_EVIDENCE_CHARS`
characters holding no personal data (the registry's PII guard over every value).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from cdp.registry.pii_guard import document_texts, ensure_no_pii
from cdp.registry.port import InvalidRegistrationError

CHALLENGER_ACTION = "model-challenger"  # audit action of `set_challenger`
CHALLENGER_KIND = "challenger"
SHADOW_KIND = "shadow"
APPROVAL_KIND = "approval"
MAX_EVIDENCE_CHARS = 8000
_KIND = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def encode_evidence(kind: str, document: Mapping[str, Any]) -> str:
    """The document as compact JSON, after checking the kind, the size and that it holds no PII."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise InvalidRegistrationError("an evidence kind is 1-32 lowercase letters, digits or '-'")
    if not isinstance(document, Mapping):
        raise InvalidRegistrationError("evidence is a JSON object")
    text = json.dumps(dict(document), sort_keys=True, separators=(",", ":"), default=str)
    if len(text) > MAX_EVIDENCE_CHARS:
        raise InvalidRegistrationError(f"evidence {kind!r} is longer than {MAX_EVIDENCE_CHARS} characters")
    ensure_no_pii({kind: "\n".join(document_texts(document))}, "evidence")
    return text


def decode_evidence(text: str | bytes) -> dict[str, Any]:
    document = json.loads(text)
    return document if isinstance(document, dict) else {"value": document}
