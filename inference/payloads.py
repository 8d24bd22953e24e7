"""`/invocations` payloads (SageMaker's inference contract) parsed into a feature frame.

JSON (`application/json`):
- `{"instances": [{"feature": value, ...}, ...]}` or a bare list of such objects;
- `{"instances": [[v1, v2, ...], ...]}`: values in the model's feature order;
- `{"columns": [...], "data": [[...], ...]}` (pandas "split" orientation).
CSV (`text/csv`): rows of values in the model's feature order, or a header row naming the columns first.
Raw categorical columns (e.g. `mcc_group`) may stand in for the model's one-hot columns.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pandas as pd


class PayloadError(ValueError):
    """The payload cannot be read (says what is wrong with its shape, never echoes values)."""

    status_code = 400


class UnsupportedMediaTypeError(PayloadError):
    """The body is neither JSON nor CSV."""

    status_code = 415


class PayloadTooLargeError(PayloadError):
    """The body is larger than the endpoint accepts."""

    status_code = 413


def _rows_frame(rows: list[Any], features: tuple[str, ...]) -> pd.DataFrame:
    if not rows:
        raise PayloadError("the payload holds no rows")
    if all(isinstance(r, dict) for r in rows):
        return pd.DataFrame(rows)
    if all(isinstance(r, list) for r in rows):
        if any(len(r) != len(features) for r in rows):
            raise PayloadError(f"each row must hold {len(features)} values, in the model's feature order")
        return pd.DataFrame(rows, columns=list(features))
    raise PayloadError("rows must all be objects or all be arrays")


def parse_json(body: bytes, features: tuple[str, ...]) -> pd.DataFrame:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the body is not valid JSON") from None
    if isinstance(doc, list):
        return _rows_frame(doc, features)
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        return _rows_frame(doc["instances"], features)
    if isinstance(doc, dict) and isinstance(doc.get("columns"), list) and isinstance(doc.get("data"), list):
        columns = [str(c) for c in doc["columns"]]
        if any(not isinstance(r, list) or len(r) != len(columns) for r in doc["data"]):
            raise PayloadError("each data row must hold one value per column")
        if not doc["data"]:
            raise PayloadError("the payload holds no rows")
        return pd.DataFrame(doc["data"], columns=columns)
    raise PayloadError('expected {"instances": [...]}, {"columns": [...], "data": [...]} or a list of rows')


_BOOLEANS = {"true": True, "false": False}


def _cell(text: str) -> Any:
    """A CSV cell: empty -> None, `true`/`false` (any case) -> bool, a number -> float, else the text."""
    text = text.strip()
    if text == "":
        return None
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    try:
        return float(text)
    except ValueError:
        return text


def parse_csv(body: bytes, features: tuple[str, ...]) -> pd.DataFrame:
    try:
        rows = [r for r in csv.reader(io.StringIO(body.decode("utf-8"))) if r]
    except (UnicodeDecodeError, csv.Error):
        raise PayloadError("the body is not UTF-8 CSV") from None
    if not rows:
        raise PayloadError("the payload holds no rows")
    header = [c.strip() for c in rows[0]]
    if set(header) & set(features) and all(_cell(c) is None or isinstance(_cell(c), str) for c in header):
        data = rows[1:]
        if not data or any(len(r) != len(header) for r in data):
            raise PayloadError("each CSV row must hold one value per header column")
        return pd.DataFrame([[_cell(c) for c in r] for r in data], columns=header)
    return _rows_frame([[_cell(c) for c in r] for r in rows], features)


def parse_payload(body: bytes, content_type: str, features: tuple[str, ...]) -> pd.DataFrame:
    """The rows of a JSON or CSV body; `PayloadError` for anything else."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/json", ""):
        return parse_json(body, features)
    if media in ("text/csv", "application/csv"):
        return parse_csv(body, features)
    raise UnsupportedMediaTypeError("content type must be application/json or text/csv")
