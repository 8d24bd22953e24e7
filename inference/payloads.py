"""`/invocations` payloads (SageMaker's inference contract) parsed into a feature frame.

JSON (`application/json`):
- `{"instances": [{"feature": value, ...}, ...]}` or a bare list of such objects;
- `{"instances": [[v1, v2, ...], ...]}`: values in the model's feature order;
- `{"columns": [...], "data": [[...], ...]}` (pandas "split" orientation).
CSV (`text/csv`): rows of values in the model's feature order, or a header row naming the columns first.
Raw categorical columns (e.g. `mcc_group`) may stand in for the model's one-hot columns.

Parsing is strict: JSON nested deeper than `MAX_JSON_DEPTH` is refused before it is parsed, `NaN` and
`Infinity` are not JSON numbers, a number too large for a float (`1e999`) is refused, and so is an object
with the same key twice. A CSV cell is a number only when it is written as one (`inf`, `nan`, `1_000` are
text, and text is no number). What each feature may hold is checked by `inference.invocations`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from typing import Any

import pandas as pd

from inference.json_depth import max_depth

MAX_COLUMNS = 1024  # distinct columns of a payload (a model has a few dozen features)
MAX_JSON_DEPTH = 16  # a payload needs 3 ({"instances": [{...}]}); deeper is refused before parsing
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")


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
        columns: set[str] = set()
        for r in rows:
            columns.update(r)
            if len(columns) > MAX_COLUMNS:  # rows x distinct keys cells: a sparse body must not blow up
                raise PayloadError(f"the rows hold more than {MAX_COLUMNS} distinct columns")
        return pd.DataFrame(rows)
    if all(isinstance(r, list) for r in rows):
        if any(len(r) != len(features) for r in rows):
            raise PayloadError(f"each row must hold {len(features)} values, in the model's feature order")
        return pd.DataFrame(rows, columns=list(features))
    raise PayloadError("rows must all be objects or all be arrays")


def _no_constant(_: str) -> Any:
    raise PayloadError("NaN and Infinity are not JSON numbers")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError("a number is too large to be a float")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        raise PayloadError("an object holds the same key twice")
    return doc


def load_json(body: bytes) -> Any:
    """The JSON document of `body`, strictly (see the module docstring); `PayloadError` otherwise."""
    if max_depth(body) > MAX_JSON_DEPTH:
        raise PayloadError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(
            body, parse_constant=_no_constant, parse_float=_finite, object_pairs_hook=_unique_keys
        )
    except PayloadError:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PayloadError("the body is not valid JSON") from None


def _at_most(rows: list[Any], max_rows: int | None) -> list[Any]:
    """`rows`, refused when there are more than `max_rows` (checked before any row is converted)."""
    if max_rows is not None and len(rows) > max_rows:
        raise PayloadError(f"at most {max_rows} rows per invocation")
    return rows


def parse_json(body: bytes, features: tuple[str, ...], max_rows: int | None = None) -> pd.DataFrame:
    doc = load_json(body)
    if isinstance(doc, list):
        return _rows_frame(_at_most(doc, max_rows), features)
    if isinstance(doc, dict) and isinstance(doc.get("instances"), list):
        return _rows_frame(_at_most(doc["instances"], max_rows), features)
    if isinstance(doc, dict) and isinstance(doc.get("columns"), list) and isinstance(doc.get("data"), list):
        columns = [str(c) for c in doc["columns"]]
        if len(columns) > MAX_COLUMNS:
            raise PayloadError(f"the rows hold more than {MAX_COLUMNS} distinct columns")
        _at_most(doc["data"], max_rows)
        if any(not isinstance(r, list) or len(r) != len(columns) for r in doc["data"]):
            raise PayloadError("each data row must hold one value per column")
        if not doc["data"]:
            raise PayloadError("the payload holds no rows")
        return pd.DataFrame(doc["data"], columns=columns)
    raise PayloadError('expected {"instances": [...]}, {"columns": [...], "data": [...]} or a list of rows')


_BOOLEANS = {"true": True, "false": False}


def _cell(text: str) -> Any:
    """A CSV cell: empty -> None, `true`/`false` (any case) -> bool, a number -> float, else the text
    (`inf`, `nan` and a number too large for a float stay text: they are not numbers)."""
    text = text.strip()
    if text == "":
        return None
    if text.lower() in _BOOLEANS:
        return _BOOLEANS[text.lower()]
    if _NUMBER.match(text):
        value = float(text)
        return value if math.isfinite(value) else text
    return text


def _csv_rows(body: bytes, max_rows: int | None) -> list[list[str]]:
    """The non-blank rows, read no further than one past `max_rows` plus a header."""
    rows: list[list[str]] = []
    try:
        for row in csv.reader(io.StringIO(body.decode("utf-8"))):
            if row:
                rows.append(row)
                if max_rows is not None and len(rows) > max_rows + 1:
                    raise PayloadError(f"at most {max_rows} rows per invocation")
    except (UnicodeDecodeError, csv.Error):
        raise PayloadError("the body is not UTF-8 CSV") from None
    return rows


def parse_csv(body: bytes, features: tuple[str, ...], max_rows: int | None = None) -> pd.DataFrame:
    rows = _csv_rows(body, max_rows)
    if not rows:
        raise PayloadError("the payload holds no rows")
    header = [c.strip() for c in rows[0]]
    if len(header) > MAX_COLUMNS:
        raise PayloadError(f"the rows hold more than {MAX_COLUMNS} distinct columns")
    if set(header) & set(features) and all(_cell(c) is None or isinstance(_cell(c), str) for c in header):
        data = rows[1:]
        if not data or any(len(r) != len(header) for r in data):
            raise PayloadError("each CSV row must hold one value per header column")
        return pd.DataFrame([[_cell(c) for c in r] for r in data], columns=header)
    return _rows_frame([[_cell(c) for c in r] for r in _at_most(rows, max_rows)], features)


def parse_payload(
    body: bytes, content_type: str, features: tuple[str, ...], max_rows: int | None = None
) -> pd.DataFrame:
    """The rows of a JSON or CSV body; `PayloadError` for anything else, and for more than `max_rows`
    rows before any is converted (a 6 MB body of tiny rows would otherwise cost seconds and a 100 MB)."""
    media = content_type.split(";")[0].strip().lower()
    if media in ("application/json", ""):
        return parse_json(body, features, max_rows)
    if media in ("text/csv", "application/csv"):
        return parse_csv(body, features, max_rows)
    raise UnsupportedMediaTypeError("content type must be application/json or text/csv")
