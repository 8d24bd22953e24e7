"""Step cache: a step whose arguments and input contents hash the same reuses the earlier run's outputs."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def parse_expiry(text: str | None) -> timedelta | None:
    """ISO-8601 durations as SageMaker's `ExpireAfter` uses them: `P30D`, `PT12H`, `P1DT6H30M`."""
    if not text:
        return None
    match = _DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


class StepCache:
    """One JSON file per (pipeline, step, digest) holding the step's properties and when it ran."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, pipeline: str, step: str, digest: str) -> Path:
        return self.folder / pipeline / step / f"{digest}.json"

    def get(self, pipeline: str, step: str, digest: str, expire_after: str | None) -> dict[str, Any] | None:
        path = self._path(pipeline, step, digest)
        if not path.is_file():
            return None
        entry = json.loads(path.read_text())
        ttl = parse_expiry(expire_after)
        if ttl is not None and datetime.now(UTC) - datetime.fromisoformat(entry["stored_at"]) > ttl:
            return None
        return entry

    def put(
        self, pipeline: str, step: str, digest: str, properties: dict[str, Any], execution_id: str
    ) -> None:
        path = self._path(pipeline, step, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "stored_at": datetime.now(UTC).isoformat(),
            "execution_id": execution_id,
            "properties": properties,
        }
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(entry, default=str))
        temp.replace(path)
