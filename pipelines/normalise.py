"""Definition JSON without its build-time noise (upload timestamps, content hashes), for diffs and goldens."""

from __future__ import annotations

import json
import re
from typing import Any

_TRAINING_PREFIX = re.compile(r"(-train)-\d{14}(?:-\d+)?")
_CODE_HASH = re.compile(r"/code/[0-9a-f]{64}/")


def normalise_definition(definition: dict[str, Any] | str) -> dict[str, Any]:
    """The definition with `<base>-train-<timestamp>` and `/code/<sha256>/` in place of the varying parts."""
    text = definition if isinstance(definition, str) else json.dumps(definition)
    text = _TRAINING_PREFIX.sub(r"\1-<timestamp>", text)
    text = _CODE_HASH.sub("/code/<sha256>/", text)
    return json.loads(text)
