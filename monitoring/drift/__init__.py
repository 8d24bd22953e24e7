"""Drift of a model's inputs and scores: the champion's training snapshot vs current data.

`run_drift_job` is the entry point; `report` holds our versioned report schema (`cdp.drift/1`),
`engine` the Evidently adapter (imported lazily), `psi` the population stability index.
"""

from monitoring.drift.job import DriftResult, DriftSettings, run_drift_job
from monitoring.drift.report import SCHEMA_VERSION, DriftReport, validate_report
from monitoring.drift.sources import DriftSourceError

__all__ = [
    "SCHEMA_VERSION",
    "DriftReport",
    "DriftResult",
    "DriftSettings",
    "DriftSourceError",
    "run_drift_job",
    "validate_report",
]
