"""The drift engine port, and its Evidently adapter.

The job decides which columns to test, with which method and threshold; the engine runs the tests and
returns our `ColumnDrift` records (plus an HTML rendering). Evidently stays behind this interface: its
API changed a lot between releases, and it takes seconds to import, so it is imported only when a
comparison actually runs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from monitoring.drift.report import ColumnDrift, ColumnKind

MISSING = "<missing>"
ASSETS_DIR = "_assets"  # beside the models' report folders: reports/_assets/
_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_LONG_DECIMAL = re.compile(r"(?<![\w.])-?\d+\.\d{7,}(?:[eE][-+]?\d+)?")
_LIBRARY_MIN_CHARS = 500_000


@dataclass(frozen=True)
class ColumnTest:
    """What to run on one column: the method (an Evidently stat-test name) and its threshold."""

    column: str
    kind: ColumnKind
    method: str
    threshold: float


@runtime_checkable
class DriftEngine(Protocol):
    """Compares a current sample with a reference sample, column by column."""

    name: str

    def compare(
        self,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        tests: Sequence[ColumnTest],
        html_path: Path | None = None,
    ) -> list[ColumnDrift]:
        """One `ColumnDrift` per test, in the tests' order; writes an HTML report to `html_path` if given."""
        ...


def prepare_columns(frame: pd.DataFrame, tests: Sequence[ColumnTest]) -> pd.DataFrame:
    """The tested columns only: numbers as float (missing as NaN), categories as text (missing named)."""
    out = {}
    for test in tests:
        column = frame[test.column]
        if test.kind == "numerical":
            out[test.column] = pd.to_numeric(column, errors="coerce").astype(float)
        else:
            out[test.column] = column.map(lambda v: MISSING if v is None or v != v else str(v)).astype(object)
    return pd.DataFrame(out, index=frame.index)


class EvidentlyEngine:
    """Runs Evidently's `DataDriftPreset` with a method and threshold per column."""

    def __init__(self) -> None:
        self._version: str | None = None

    @property
    def name(self) -> str:
        return f"evidently {self._version}" if self._version else "evidently"

    def compare(
        self,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        tests: Sequence[ColumnTest],
        html_path: Path | None = None,
    ) -> list[ColumnDrift]:
        if not tests:
            raise ValueError("no columns to compare")
        os.environ.setdefault("DO_NOT_TRACK", "1")  # no usage telemetry from the library
        import evidently
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        self._version = evidently.__version__
        definition = DataDefinition(
            numerical_columns=[t.column for t in tests if t.kind == "numerical"],
            categorical_columns=[t.column for t in tests if t.kind == "categorical"],
        )
        preset = DataDriftPreset(
            columns=[t.column for t in tests],
            per_column_method={t.column: t.method for t in tests},
            per_column_threshold={t.column: t.threshold for t in tests},
        )
        snapshot = Report([preset], include_tests=True).run(
            Dataset.from_pandas(prepare_columns(current, tests), data_definition=definition),
            Dataset.from_pandas(prepare_columns(reference, tests), data_definition=definition),
        )
        if html_path is not None:
            write_html(snapshot.get_html_str(as_iframe=False), html_path, self._version)
        return _column_results(snapshot.dict(), tests)


def write_html(html: str, html_path: Path, version: str | None) -> None:
    """Write Evidently's HTML with its UI library as a shared file beside the reports, numbers rounded.

    The report's data (its charts' series) stays in the page, at display precision (6 significant
    digits): long float literals add nothing a reader can see, and runs of 15-16 digits would look like
    card numbers to the leak scan. The UI library (~3.5 MB of third-party code, the same for every
    report) is written once to `<reports>/_assets/` and loaded from there.
    """
    assets = html_path.parent.parent.parent / ASSETS_DIR
    library_name = f"evidently-{version or 'unknown'}.js"

    def replace(match: re.Match[str]) -> str:
        body = match.group(1)
        if len(body) >= _LIBRARY_MIN_CHARS and not body.lstrip().startswith("var metric_"):
            library = assets / library_name
            if not library.is_file():
                assets.mkdir(parents=True, exist_ok=True)
                library.write_text(body, encoding="utf-8")
            return f'<script src="../../{ASSETS_DIR}/{library_name}"></script>'
        rounded = _LONG_DECIMAL.sub(lambda m: f"{float(m.group()):.6g}", body)
        return f"<script>{rounded}</script>"

    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(_SCRIPT.sub(replace, html), encoding="utf-8")


def _column_results(doc: dict, tests: Sequence[ColumnTest]) -> list[ColumnDrift]:
    """Our records from the snapshot's `ValueDrift` metrics and their tests' PASS/FAIL."""
    values: dict[str, tuple[str, float]] = {}
    for metric in doc.get("metrics", []):
        config = metric.get("config", {})
        if str(config.get("type", "")).endswith(":ValueDrift"):
            values[config["column"]] = (metric["id"], float(metric["value"]))
    failed: dict[str, bool] = {}
    for test in doc.get("tests", []):
        metric_id = test.get("metric_config", {}).get("metric_id")
        if metric_id is not None:
            failed[metric_id] = test.get("status") == "FAIL"
    results = []
    for test in tests:
        if test.column not in values:
            raise RuntimeError(f"the drift engine returned no result for column {test.column!r}")
        metric_id, statistic = values[test.column]
        drifted = failed.get(metric_id, statistic >= test.threshold)
        results.append(
            ColumnDrift(test.column, test.kind, test.method, statistic, test.threshold, bool(drifted))
        )
    return results
