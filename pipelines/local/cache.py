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
    """One JSON file per (pipeline, step, digest) holding the step's properties, when and in which run it
    ran, and its fingerprint (`pipelines.local.fingerprint`: what a later miss is explained against)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, pipeline: str, step: str, digest: str) -> Path:
        return self.folder / pipeline / step / f"{digest}.json"

    def find(self, pipeline: str, step: str, digest: str) -> dict[str, Any] | None:
        """The entry stored for this digest, expired or not."""
        path = self._path(pipeline, step, digest)
        return json.loads(path.read_text()) if path.is_file() else None

    @staticmethod
    def expired(entry: dict[str, Any], expire_after: str | None) -> bool:
        """Whether `entry` is older than the step's `ExpireAfter` (never, without one)."""
        ttl = parse_expiry(expire_after)
        return ttl is not None and datetime.now(UTC) - datetime.fromisoformat(entry["stored_at"]) > ttl

    def get(self, pipeline: str, step: str, digest: str, expire_after: str | None) -> dict[str, Any] | None:
        """The entry for this digest unless it expired."""
        entry = self.find(pipeline, step, digest)
        return None if entry is None or self.expired(entry, expire_after) else entry

    def latest(self, pipeline: str, step: str) -> dict[str, Any] | None:
        """The most recently stored entry of the step, whatever its digest (None if there is none)."""
        folder = self.folder / pipeline / step
        entries = []
        for path in folder.glob("*.json") if folder.is_dir() else ():
            try:
                entries.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError):  # a damaged entry explains nothing
                continue
        return max(entries, key=lambda e: e.get("stored_at", ""), default=None)

    def put(
        self,
        pipeline: str,
        step: str,
        digest: str,
        properties: dict[str, Any],
        execution_id: str,
        components: dict[str, str] | None = None,
    ) -> None:
        path = self._path(pipeline, step, digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {
            "stored_at": datetime.now(UTC).isoformat(),
            "execution_id": execution_id,
            "properties": properties,
            "components": components or {},
        }
        temp = path.with_suffix(".tmp")
        temp.write_text(json.dumps(entry, default=str))
        temp.replace(path)
