"""The drift job: the champion's training snapshot vs a window of current data, per column and per score.

Per column (the model's features present on both sides, raw columns before one-hot encoding): numbers by
the normed Wasserstein distance, categories (text, booleans) by PSI, each with its threshold. Both sides
are sampled to the same fixed size with a seed first: with large samples every significance test fires,
distances with thresholds do not. Score drift (fraud): PSI of the fraud probability, the champion's
predictions on the reference sample vs the probabilities serving logged in the window. CLV and
segmentation get no score PSI: their current data (the customer table) carries no logged predictions, and
re-scoring both sides with the same champion would only restate the feature drift already measured.

Writes `report.json` (our `cdp.drift/1` schema) and `report.html` (the engine's) under
`<home>/monitoring/reports/<model>/<UTC timestamp>/`. Neither holds customer data: statistics, column
names, hashes; the HTML's charts show feature distributions only (no identifiers are monitored columns).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from monitoring.drift.engine import ColumnTest, DriftEngine, EvidentlyEngine
from monitoring.drift.psi import numeric_psi
from monitoring.drift.report import ColumnDrift, ColumnKind, DriftReport, ScoreDrift
from monitoring.drift.sources import (
    Current,
    DriftSourceError,
    Reference,
    customer_window,
    load_reference,
    scored_window,
)

if TYPE_CHECKING:
    from cdp.backends import Backends

SCORED_MODELS = ("cdp-fraud",)
CUSTOMER_MODELS = ("cdp-clv", "cdp-segmentation")
# never monitored: keys, labels, split markers, partitions, time columns
NOT_MONITORED = frozenset(
    {
        "txn_id",
        "event_seq",
        "ts",
        "event_time",
        "as_of",
        "user_token",
        "card_token",
        "customer_id",
        "split",
        "label",
        "is_fraud",
        "year",
        "month",
        "fraud_probability",
        "future_value_12m",
        "future_spend_12m",
        "heuristic_last_12m",
    }
)
NO_SCORE_PSI_NOTE = (
    "no score PSI: the customer table carries no logged predictions; re-scoring both sides with the same "
    "champion would restate the feature drift"
)


@dataclass(frozen=True)
class DriftSettings:
    """How the job samples and which method / threshold it uses per column type."""

    sample_size: int = 5000
    seed: int = 7
    window_days: int = 30
    # PSI for every column: the measure banks read (< 0.1 stable, 0.1-0.25 watch, > 0.25 shift) and, unlike
    # a normed Wasserstein distance at 0.1, quiet on the seasonal and trend drift of a years-long snapshot.
    numerical_method: str = "psi"
    numerical_threshold: float = 0.25
    categorical_method: str = "psi"
    categorical_threshold: float = 0.25
    score_psi_threshold: float = 0.25


@dataclass(frozen=True)
class DriftResult:
    """The report and where it was written."""

    report: DriftReport
    folder: Path
    json_path: Path
    html_path: Path

    @property
    def share_drifted(self) -> float:
        return self.report.share_drifted

    @property
    def score_psi(self) -> float | None:
        return self.report.score_psi


def column_kind(series: pd.Series) -> ColumnKind:
    """Booleans and text are categories; other numbers are numerical."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "numerical"
    return "categorical"


def monitored_columns(features: tuple[str, ...], reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Raw columns on both sides that feed the model (named as a feature, or one-hot as `<column>__*`).

    A column with no value at all on one side (e.g. a 1-hour mean in a window where no card bought twice
    within an hour) has no distribution to compare and is left out."""
    chosen = []
    for column in reference.columns:
        if column in NOT_MONITORED or column not in current.columns:
            continue
        if reference[column].isna().all() or current[column].isna().all():
            continue
        if column in features or any(f.startswith(f"{column}__") for f in features):
            chosen.append(column)
    return chosen


def column_tests(columns: list[str], reference: pd.DataFrame, settings: DriftSettings) -> list[ColumnTest]:
    tests = []
    for column in columns:
        kind = column_kind(reference[column])
        if kind == "numerical":
            tests.append(ColumnTest(column, kind, settings.numerical_method, settings.numerical_threshold))
        else:
            tests.append(
                ColumnTest(column, kind, settings.categorical_method, settings.categorical_threshold)
            )
    return tests


def _sample(frame: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=min(size, len(frame)), random_state=seed).sort_index()


def champion_scores(backends: Backends, reference: Reference, rows: pd.DataFrame) -> np.ndarray:
    """The champion's probabilities on reference rows, encoded exactly as serving encodes them."""
    from inference.fraud_scoring import encode
    from inference.loaded import load_version

    model = load_version(reference.champion, backends.object_store)
    records = rows.astype(object).where(rows.notna(), None).to_dict("records")
    probabilities = np.asarray(model.model.predict_proba(encode(model, records)), dtype=float)
    return probabilities if probabilities.ndim == 1 else probabilities[:, -1]


def _score_drift(
    backends: Backends,
    reference: Reference,
    ref_sample: pd.DataFrame,
    current: Current,
    settings: DriftSettings,
) -> ScoreDrift:
    ref_scores = champion_scores(backends, reference, ref_sample)
    psi = numeric_psi(ref_scores, current.frame["fraud_probability"].to_numpy(float))
    versions = ", ".join(f"v{v}" for v in current.scored_by) or "unknown"
    return ScoreDrift(
        method="psi",
        statistic=psi,
        threshold=settings.score_psi_threshold,
        drifted=psi > settings.score_psi_threshold,
        reference_source=f"champion v{reference.champion.version} scoring the reference sample",
        current_source=f"fraud_probability logged by serving (scored by {versions})",
    )


def report_folder(backends: Backends, model_name: str, moment: datetime) -> Path:
    """`<home>/monitoring/reports/<model>/<UTC timestamp>/` (a new folder per run)."""
    base = backends.settings.home / "monitoring" / "reports" / model_name
    stamp = moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder, n = base / stamp, 1
    while folder.exists():
        n += 1
        folder = base / f"{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def run_drift_job(
    backends: Backends,
    model_name: str = "cdp-fraud",
    *,
    window: tuple[datetime, datetime] | None = None,
    sample_size: int | None = None,
    seed: int | None = None,
    settings: DriftSettings | None = None,
    engine: DriftEngine | None = None,
) -> DriftResult:
    """Compare `model_name`'s champion training snapshot with current data; write and return the report.

    `window` is an event-time range [start, end) of scored data (fraud only; default: the settings'
    `window_days` up to the newest scored event). Raises `DriftSourceError` when a side is missing.
    """
    settings = settings or DriftSettings()
    size = sample_size or settings.sample_size
    seed = settings.seed if seed is None else seed
    if model_name not in SCORED_MODELS + CUSTOMER_MODELS:
        raise ValueError(
            f"no drift job for {model_name}; choose one of {', '.join(SCORED_MODELS + CUSTOMER_MODELS)}"
        )
    reference = load_reference(backends, model_name)
    if model_name in SCORED_MODELS:
        current = scored_window(backends, model_name, window, settings.window_days, size, seed)
    else:
        current = customer_window(backends)
        current = Current(current.window, _sample(current.frame, size, seed))
    columns = monitored_columns(reference.champion.lineage.features, reference.frame, current.frame)
    if not columns:
        raise DriftSourceError(f"{model_name}: no feature of the champion is present on both sides")
    ref_sample = _sample(reference.frame, size, seed)
    tests = column_tests(columns, ref_sample, settings)
    engine = engine or EvidentlyEngine()
    created = datetime.now(UTC)
    folder = report_folder(backends, model_name, created)
    html_path, json_path = folder / "report.html", folder / "report.json"
    drifts: list[ColumnDrift] = engine.compare(ref_sample, current.frame, tests, html_path)
    score = None
    if model_name in SCORED_MODELS:
        score = _score_drift(backends, reference, ref_sample, current, settings)
    report = DriftReport(
        model=model_name,
        champion_version=reference.champion.version,
        reference=reference.snapshot,
        window=current.window,
        sample_sizes={"reference": len(ref_sample), "current": len(current.frame)},
        sample_seed=seed,
        columns=drifts,
        share_drifted=sum(d.drifted for d in drifts) / len(drifts),
        score=score,
        created_at=created.isoformat(),
        engine=engine.name,
        score_note=None if score else NO_SCORE_PSI_NOTE,
    )
    json_path.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    return DriftResult(report, folder, json_path, html_path)


__all__ = ["DriftResult", "DriftSettings", "DriftSourceError", "run_drift_job"]
