"""One `/invocations` call, whoever serves it: the in-process app (the registry's champion) or the SageMaker
container (the model of `/opt/ml/model`). Body in, response out; errors are `PayloadError`s (4xx).

The JSON answer is `{"predictions": [...], "model": ..., "model_version": ...}`, plus `"reasons"` (one
list of `{"feature", "contribution"}` per row, largest SHAP contribution first) for a binary classifier
when reason codes are asked for. `Accept: text/csv` gets the predictions alone, one row per line.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any

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


def check_cells(frame: pd.DataFrame, features: Sequence[str]) -> None:
    """Every cell is a scalar, and a model feature's cells are numbers (or null, or numeric text).

    Raw categorical columns (e.g. `mcc_group` for the model's one-hot columns) may hold text."""
    wanted = set(features)
    for column in frame.columns:
        values = frame[column]
        if values.dtype != object:
            continue
        if not all(isinstance(v, _SCALARS) for v in values):
            raise PayloadError(f"column {str(column)[:64]!r} holds a value that is not a number or text")
        if column in wanted:
            text = [v for v in values if isinstance(v, str)]
            if text and pd.to_numeric(pd.Series(text), errors="coerce").isna().any():
                raise PayloadError(f"feature {str(column)[:64]!r} must be a number")


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
) -> Response:
    """Score a JSON or CSV body with `model`: the `/invocations` response (`PayloadError` when the body
    cannot be scored: its shape, its types, the features it lacks)."""
    frame = parse_payload(body, content_type, model.features)
    if len(frame) > max_rows:
        raise PayloadError(f"at most {max_rows} rows per invocation")
    check_cells(frame, model.features)
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
