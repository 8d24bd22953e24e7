"""Batch scoring, the Batch Transform twin: any registered version of the fraud model on a transactions file,
a lake table or a frame, one output row per accepted input row.

    scores = score_transactions("cdp-fraud", None, "transactions.csv")          # the champion
    scores = score_transactions("cdp-fraud", 3, "transactions")                  # version 3, a lake table

Steps: the input is read as protected lake rows (`inference.batch_input`: the batch job's reader and
quarantine, extraction's tokens); each row's features are computed point-in-time by the view's own SQL over
its card's lake history and the batch (`features.point_in_time`, what the training sets run: the lake gives
per-card aggregates of the older history and the last 30 days' events, of the file's cards only; the
view's SQL seeded with them runs over those days and the file); the version
scores the feature rows through the batch-transform port (`Backends.batch_transform`: in this process here,
encoded as training encodes them and scored by the booster; a SageMaker transform job on the inference
container in AWS). The decision is taken at the version's registered alert threshold (its evaluated
`alert_threshold`, as serving decides), and reason codes are the serving code's exact SHAP contributions
(`inference.fraud_scoring.score_frame`), for the alerted rows by default (`CDP_SCORE_REASONS`).

The output frame holds tokens only: `row` (file line, or 1-based position in a table or frame), `txn_id`,
`card_token`, `ts`, `score`, `alert`, `reason_codes`, and `is_fraud` when the input is labelled. Its `attrs`
hold the model, version, threshold and the reconciliation (`rows_in == scored + quarantined`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from cdp.backends import Backends
from cdp.ibm.quarantine import Quarantine
from cdp.registry.port import CHAMPION, ModelVersion, ModelVersionNotFoundError
from cdp.scoring.port import DEFAULT_THRESHOLD
from cdp.transform.port import TransformOutput
from features.views import EVENT_VIEWS
from inference.batch_input import BatchInput, from_frame, read_lake_table, read_transactions_file
from inference.fraud_scoring import THRESHOLD_METRIC, FeatureMismatchError, encode, score_frame
from inference.loaded import LoadedModel, load_version
from training.fraud.preprocess import encode_features

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectStore

FRAUD_VIEW = "fraud_card"
ReasonMode = Literal["alerts", "all", "none"]
OUTPUT_COLUMNS = ("row", "txn_id", "card_token", "ts", "score", "alert", "reason_codes")


class ScoringInputError(ValueError):
    """The model or input cannot be scored (one line, no values)."""


def resolve_version(
    backends: Backends, model: str, version: int | None, alias: str = CHAMPION
) -> ModelVersion:
    """The registered version asked for: `version`, else the version holding `alias` (only `champion`)."""
    registry = backends.model_registry
    if version is not None:
        return registry.get(model, int(version))
    if alias != CHAMPION:
        raise ScoringInputError(f"unknown alias {alias!r}: the registry keeps only {CHAMPION!r}")
    found = registry.champion(model)
    if found is None:
        raise ModelVersionNotFoundError(f"model {model!r} has no champion: give --version")
    return found


def registered_threshold(version: ModelVersion, configured: float | None = None) -> float:
    """The decision threshold: the one given, else the version's evaluated alert threshold, else 0.5 (as
    `inference.fraud_scoring.decision_threshold` decides for the served champion)."""
    if configured is not None:
        return float(configured)
    return float(version.metrics.get(THRESHOLD_METRIC, DEFAULT_THRESHOLD))


# -- the in-process scorer behind the batch-transform port --------------------------------------------------


def model_matrix(model: LoadedModel, feature_rows: pa.Table) -> np.ndarray:
    """The model's float32 input matrix from raw view feature rows, with training's own encoder
    (`encode_features`: the spec's one-hot vocabulary, numbers coerced, missing as NaN)."""
    if not model.one_hot and not model.spec:
        return encode(model, feature_rows.to_pylist()).to_numpy(np.float32)
    needed = [c for c in dict.fromkeys([*model.one_hot, *model.features]) if c in feature_rows.column_names]
    missing = [f for f in model.features if f not in needed and "__" not in f]
    if missing:
        raise FeatureMismatchError(f"the feature rows lack model features: {missing[:5]}")
    frame = feature_rows.select(needed).to_pandas()
    spec = {"features": list(model.features), "one_hot": model.one_hot}
    return encode_features(frame, spec).to_numpy(np.float32)


def score_matrix(
    model: LoadedModel, matrix: np.ndarray, reasons_from: float | None, reason_codes: int = 3
) -> TransformOutput:
    """Probabilities of every row; serving's SHAP reason codes for the rows at or above `reasons_from`."""
    import xgboost

    if model.booster is None:
        raise FeatureMismatchError("batch scoring needs an XGBoost booster model")
    dmatrix = xgboost.DMatrix(matrix, feature_names=list(model.features), missing=np.nan)
    probabilities = np.asarray(model.booster.predict(dmatrix), dtype=np.float64)
    reasons: list[Any] = [[] for _ in range(len(probabilities))]
    if reasons_from is not None and len(probabilities):
        chosen = np.flatnonzero(probabilities >= reasons_from)
        if chosen.size:
            for i, scored in zip(
                chosen.tolist(), score_frame(model, matrix[chosen], reason_codes), strict=True
            ):
                reasons[i] = scored.reasons
    return TransformOutput(probabilities, reasons)


def local_scorer(object_store: ObjectStore | None, reason_codes: int = 3) -> Any:
    """The in-process scorer of `InProcessTransform`: loads a version as serving does (kept for reuse)."""
    loaded: dict[tuple[str, int], LoadedModel] = {}

    def score(version: ModelVersion, feature_rows: pa.Table, reasons_from: float | None) -> TransformOutput:
        key = (version.model_name, version.version)
        if key not in loaded:
            loaded[key] = load_version(version, object_store)
        model = loaded[key]
        return score_matrix(model, model_matrix(model, feature_rows), reasons_from, reason_codes)

    return score


# -- the library function -------------------------------------------------------------------------------


def read_input(
    data: str | Path | pd.DataFrame | pa.Table, backends: Backends, quarantine: Quarantine
) -> BatchInput:
    """A file path, a lake table name, or a frame, as rows to score (see `inference.batch_input`)."""
    names = EVENT_VIEWS[FRAUD_VIEW].feature_names
    if isinstance(data, pd.DataFrame | pa.Table):
        return from_frame(data, names)
    path = Path(data)
    if path.is_file() or path.suffix.lower() == ".csv" or "/" in str(data):
        return read_transactions_file(path, backends, quarantine)
    return read_lake_table(str(data), backends, names)


def _reason_text(reasons: Any) -> str:
    return "; ".join(f"{name} ({value:+.3f})" for name, value in reasons)


def default_quarantine_dir(backends: Backends, source: str) -> Path:
    """`<home>/quarantine/score/<input name>/` (the quarantine of one scored input)."""
    return backends.settings.quarantine_dir / "score" / Path(source).name.replace(".", "_")


def score_transactions(
    model: str,
    version: int | None,
    data: str | Path | pd.DataFrame | pa.Table,
    *,
    alias: str = CHAMPION,
    backends: Backends | None = None,
    reasons: ReasonMode | None = None,
    reason_codes: int = 3,
    threshold: float | None = None,
    quarantine_dir: Path | None = None,
) -> pd.DataFrame:
    """Score every row of `data` (an IBM transactions CSV path, a lake table name, or a frame of lake
    transactions or of the view's feature rows) with `model` version `version` (None: the `alias`).

    Returns one row per accepted input row (columns `OUTPUT_COLUMNS`, plus `is_fraud` when labelled); rows
    that cannot be scored are quarantined with a reason under `quarantine_dir`. `frame.attrs` holds `model`,
    `version`, `threshold`, `source`, `rows_in`, `scored`, `quarantined`, `quarantine_reasons` and
    `quarantine_path`; `rows_in == scored + quarantined` always.
    """
    b = backends or Backends()
    mode: ReasonMode = reasons or b.settings.score_reasons
    chosen = resolve_version(b, model, version, alias)
    source = Path(data).name if isinstance(data, str | Path) else "frame"
    folder = quarantine_dir or default_quarantine_dir(b, source)
    with Quarantine(folder) as quarantine:
        batch = read_input(data, b, quarantine)
    batch.quarantine_path = folder / "quarantine.parquet"
    batch.quarantine_reasons = dict(quarantine.by_reason)
    if batch.features is not None:
        features = batch.features
    else:
        from features.point_in_time import features_for_rows

        features = features_for_rows(b.catalog, batch.rows, FRAUD_VIEW, cards=batch.cards)
    cut = registered_threshold(chosen, threshold)
    reasons_from = {"alerts": cut, "all": 0.0, "none": None}[mode]
    view_features = [n for n in EVENT_VIEWS[FRAUD_VIEW].feature_names if n in features.column_names]
    transform = b.batch_transform(lambda: local_scorer(b.object_store, reason_codes))
    scored = transform.transform(chosen, features.select(view_features), reasons_from)
    return _output_frame(batch, features, scored, chosen, cut)


def _column(features: pa.Table, name: str, rows: int) -> Any:
    return features[name].to_numpy(zero_copy_only=False) if name in features.column_names else [None] * rows


def _output_frame(
    batch: BatchInput, features: pa.Table, scored: TransformOutput, version: ModelVersion, threshold: float
) -> pd.DataFrame:
    n = features.num_rows
    frame = pd.DataFrame(
        {
            "row": batch.row_ids.to_numpy(zero_copy_only=False),
            "txn_id": _column(features, "txn_id", n),
            "card_token": _column(features, "card_token", n),
            "ts": _column(features, "ts", n),
            "score": scored.probabilities,
            "alert": scored.probabilities >= threshold,
            "reason_codes": [_reason_text(r) for r in scored.reasons],
        }
    )
    if batch.labelled:
        label = "label" if "label" in features.column_names else "is_fraud"
        frame["is_fraud"] = pd.array(features[label].to_pylist(), dtype="boolean")
    frame.attrs.update(
        model=version.model_name,
        version=version.version,
        threshold=threshold,
        source=batch.source,
        rows_in=batch.rows_in,
        scored=len(frame),
        quarantined=batch.quarantined,
        quarantine_reasons=batch.quarantine_reasons,
        quarantine_path=str(batch.quarantine_path) if batch.quarantined else None,
    )
    return frame


def write_scores(frame: pd.DataFrame, out: Path) -> Path:
    """Write scores as CSV (`.csv`) or Parquet (any other suffix); returns the path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return out
