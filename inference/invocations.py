"""One `/invocations` call, whoever serves it: the in-process app (the registry's champion) or the SageMaker
container (the model of `/opt/ml/model`). Body in, response out; errors are `PayloadError`s (4xx).

The JSON answer is `{"predictions": [...], "model": ..., "model_version": ...}`, plus `"reasons"` (one
list of `{"feature", "contribution"}` per row, largest SHAP contribution first) for a binary classifier
when reason codes are asked for. `Accept: text/csv` gets the predictions alone, one row per line.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable
from typing import Any

import numpy as np
import pandas as pd
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from cdp.registry.scoring import MissingFeaturesError
from inference.fraud_scoring import FeatureMismatchError
from inference.loaded import LoadedModel
from inference.payloads import PayloadError, PayloadTooLargeError, parse_payload
from inference.predict import predictions, score_with_reasons

MAX_BODY_BYTES = 6 << 20  # SageMaker's own request limit for real-time endpoints
_SCALARS = (str, int, float, bool, type(None))


class InvocationTimeoutError(RuntimeError):
    """The model did not answer within the server's timeout (`SAGEMAKER_MODEL_SERVER_TIMEOUT`)."""


async def read_body(
    chunks: AsyncIterable[bytes], content_length: str | None, limit: int = MAX_BODY_BYTES
) -> bytes:
    """The request body, at most `limit` bytes: a larger one is read to its end but not kept (so the
    client gets its answer instead of a broken connection), then refused with 413."""
    declared = int(content_length) if content_length and content_length.isdigit() else None
    too_large = declared is not None and declared > limit
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        too_large = too_large or size > limit
        if not too_large:
            parts.append(chunk)
    if too_large:
        raise PayloadTooLargeError(f"the body is larger than {limit >> 20} MB")
    return b"".join(parts)


def _feature_bounds(model: LoadedModel, magnitude: float) -> dict[str, tuple[float, float, str]]:
    """Each model feature's (low, high, what the bound is): the model spec's `ranges` where it has them
    (`{"feature": [low, high]}` in features.json), else +-`magnitude`."""
    ranges = model.spec.get("ranges") or {}
    bounds: dict[str, tuple[float, float, str]] = {}
    for name in model.features:
        found = ranges.get(name)
        if isinstance(found, list | tuple) and len(found) == 2:
            bounds[name] = (float(found[0]), float(found[1]), "within the model's training range")
        else:
            bounds[name] = (-magnitude, magnitude, f"a finite number within +-{magnitude:g}")
    return bounds


def _name(column: object) -> str:
    return repr(str(column)[:64])


def _check_numbers(column: object, values: pd.Series, bound: tuple[float, float, str]) -> None:
    """A feature column: null, a boolean or a number within `bound` in every row (400 naming the first
    row that is not; rows count from 0)."""
    low, high, what = bound
    if values.dtype == object:
        for row, v in enumerate(values):
            if v is None or isinstance(v, bool):
                continue
            if not isinstance(v, int | float):
                raise PayloadError(f"row {row}, feature {_name(column)}: must be a number")
            if isinstance(v, float) and math.isnan(v):
                continue  # a null in a float column
            if not low <= v <= high:
                raise PayloadError(f"row {row}, feature {_name(column)}: must be {what}")
        return
    if pd.api.types.is_bool_dtype(values.dtype):
        return
    if not pd.api.types.is_numeric_dtype(values.dtype):
        raise PayloadError(f"feature {_name(column)} must be a number")
    numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isnan(numbers) & ~((numbers >= low) & (numbers <= high))
    if bad.any():
        raise PayloadError(f"row {int(np.argmax(bad))}, feature {_name(column)}: must be {what}")


def check_cells(frame: pd.DataFrame, model: LoadedModel, magnitude: float = 1e15) -> None:
    """Every cell is a scalar; a model feature's cells are numbers (finite, within the model's ranges or
    +-`magnitude`), booleans or null. Raw categorical columns (e.g. `mcc_group` for the model's one-hot
    columns) may hold text; other columns are not read by the model."""
    bounds = _feature_bounds(model, magnitude)
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object:
            for row, v in enumerate(values):
                if not isinstance(v, _SCALARS):
                    raise PayloadError(f"row {row}, column {_name(column)}: a list or an object is no value")
        if column in bounds:
            _check_numbers(column, values, bounds[column])


def _outputs(model: LoadedModel, frame: pd.DataFrame, reason_codes: int) -> tuple[list, list | None]:
    """(predictions, reasons per row or None)."""
    if reason_codes > 0 and getattr(model.model, "objective", None) == "binary:logistic" and model.booster:
        scores = score_with_reasons(model, frame, reason_codes)
        reasons = [[{"feature": f, "contribution": c} for f, c in s.reasons] for s in scores]
        return [s.probability for s in scores], reasons
    return predictions(model, frame), None


def invoke(
    model: LoadedModel,
    body: bytes,
    content_type: str,
    accept: str,
    *,
    max_rows: int,
    reason_codes: int,
    magnitude: float = 1e15,
) -> Response:
    """Score a JSON or CSV body with `model`: the `/invocations` response (`PayloadError` when the body
    cannot be scored: its shape, its types, the features it lacks)."""
    frame = parse_payload(body, content_type, model.features, max_rows)
    check_cells(frame, model, magnitude)
    try:
        values, reasons = _outputs(model, frame, reason_codes)
    except (FeatureMismatchError, MissingFeaturesError) as error:
        raise PayloadError(str(error)) from None
    if "text/csv" in accept:
        lines = (",".join(str(x) for x in v) if isinstance(v, list) else str(v) for v in values)
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/csv")
    doc: dict[str, Any] = {"predictions": values, "model": model.name, "model_version": model.version}
    if reasons is not None:
        doc["reasons"] = reasons
    return JSONResponse(doc)
