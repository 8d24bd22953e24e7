"""Our own drift report schema (`cdp.drift/1`): what the drift job found, independent of the engine.

The engine (Evidently today) may change its output between versions; this document does not. Readers
(the monitor run, the dashboard, the tests) read only this. A change that removes or renames a field
bumps the version; adding an optional field does not.

Nothing in it identifies a customer: column names, statistics, sample sizes, time bounds and hashes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = "cdp.drift/1"
ColumnKind = Literal["numerical", "categorical"]


@dataclass(frozen=True)
class ColumnDrift:
    """One monitored column: the method, its statistic, the threshold, and whether it drifted."""

    column: str
    kind: ColumnKind
    method: str
    statistic: float
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class ScoreDrift:
    """Drift of the model's output: PSI of the champion's scores, reference sample vs window."""

    method: str
    statistic: float
    threshold: float
    drifted: bool
    reference_source: str  # how the reference scores were obtained
    current_source: str  # how the window's scores were obtained


@dataclass(frozen=True)
class ReferenceSnapshot:
    """The champion's training snapshot the window is compared with."""

    data_snapshot_hash: str
    pipeline_run_id: str
    uri: str
    rows: int


@dataclass(frozen=True)
class Window:
    """The current data: which table, which event-time range (start inclusive, end exclusive), rows."""

    table: str
    start: str | None
    end: str | None
    rows: int
    rule: str  # how the window was chosen, in words


@dataclass(frozen=True)
class DriftReport:
    """The drift job's findings for one model (serialise with `to_dict`)."""

    model: str
    champion_version: int
    reference: ReferenceSnapshot
    window: Window
    sample_sizes: dict[str, int]  # {"reference": n, "current": n}
    sample_seed: int
    columns: list[ColumnDrift]
    share_drifted: float
    score: ScoreDrift | None
    created_at: str
    engine: str
    score_note: str | None = None  # why there is no score drift, when there is none
    schema_version: str = field(default=SCHEMA_VERSION)

    @property
    def score_psi(self) -> float | None:
        return self.score.statistic if self.score else None

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["score_psi"] = self.score_psi
        return doc


_DRIFT_ENTRY = {
    "type": "object",
    "required": ["method", "statistic", "threshold", "drifted"],
    "properties": {
        "method": {"type": "string", "minLength": 1},
        "statistic": {"type": "number"},
        "threshold": {"type": "number"},
        "drifted": {"type": "boolean"},
    },
}

JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://cdp.local/schemas/drift-report-1.json",
    "title": "CDP drift report",
    "type": "object",
    "required": [
        "schema_version",
        "model",
        "champion_version",
        "reference",
        "window",
        "sample_sizes",
        "sample_seed",
        "columns",
        "share_drifted",
        "score",
        "score_psi",
        "created_at",
        "engine",
    ],
    "properties": {
        "schema_version": {"const": SCHEMA_VERSION},
        "model": {"type": "string", "pattern": "^[a-z0-9](-?[a-z0-9])*$"},
        "champion_version": {"type": "integer", "minimum": 1},
        "reference": {
            "type": "object",
            "required": ["data_snapshot_hash", "pipeline_run_id", "uri", "rows"],
            "properties": {
                "data_snapshot_hash": {"type": "string"},
                "pipeline_run_id": {"type": "string"},
                "uri": {"type": "string"},
                "rows": {"type": "integer", "minimum": 1},
            },
        },
        "window": {
            "type": "object",
            "required": ["table", "start", "end", "rows", "rule"],
            "properties": {
                "table": {"type": "string"},
                "start": {"type": ["string", "null"]},
                "end": {"type": ["string", "null"]},
                "rows": {"type": "integer", "minimum": 0},
                "rule": {"type": "string"},
            },
        },
        "sample_sizes": {
            "type": "object",
            "required": ["reference", "current"],
            "properties": {
                "reference": {"type": "integer", "minimum": 1},
                "current": {"type": "integer", "minimum": 1},
            },
        },
        "sample_seed": {"type": "integer"},
        "columns": {
            "type": "array",
            "minItems": 1,
            "items": {
                **_DRIFT_ENTRY,
                "required": ["column", "kind", *_DRIFT_ENTRY["required"]],
                "properties": {
                    **_DRIFT_ENTRY["properties"],
                    "column": {"type": "string", "minLength": 1},
                    "kind": {"enum": ["numerical", "categorical"]},
                },
            },
        },
        "share_drifted": {"type": "number", "minimum": 0, "maximum": 1},
        "score": {
            "oneOf": [
                {"type": "null"},
                {
                    **_DRIFT_ENTRY,
                    "required": [*_DRIFT_ENTRY["required"], "reference_source", "current_source"],
                },
            ]
        },
        "score_psi": {"type": ["number", "null"]},
        "score_note": {"type": ["string", "null"]},
        "created_at": {"type": "string", "format": "date-time"},
        "engine": {"type": "string"},
    },
}


def validate_report(doc: dict[str, Any]) -> None:
    """Raise `jsonschema.ValidationError` unless `doc` is a valid `cdp.drift/1` report."""
    import jsonschema

    jsonschema.validate(doc, JSON_SCHEMA)
