"""Which data an evaluation measured, without keeping any of it: a SHA-256 and the time range.

A file is hashed byte for byte (the same file always gives the same fingerprint, so a reviewer can check a
recorded evaluation against the file they hold); a lake table or a frame by its scored labelled rows
(transaction id, card token, time, label: tokens, never personal data), in the order they were read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

CHUNK = 1 << 20
FILE_BYTES = "file's bytes"
LABELLED_ROWS = "labelled rows (transaction id, card token, time, label)"
_ROW_COLUMNS = ("txn_id", "card_token", "ts", "is_fraud")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def rows_sha256(scores: pd.DataFrame) -> str:
    columns = [c for c in _ROW_COLUMNS if c in scores.columns]
    hashed = pd.util.hash_pandas_object(scores[columns].astype(str), index=False)
    return hashlib.sha256(hashed.to_numpy().tobytes()).hexdigest()


def data_fingerprint(data: str | Path | pd.DataFrame, scores: pd.DataFrame) -> dict[str, Any]:
    """`source` (a file's name or a table's, no folder), `sha256`, what was `hashed`, and the rows' first and
    last day (`first_ts`, `last_ts`)."""
    is_file = isinstance(data, str | Path) and Path(data).is_file()
    ts = pd.to_datetime(scores["ts"]) if "ts" in scores.columns and len(scores) else None
    return {
        "source": str(scores.attrs.get("source") or (Path(data).name if is_file else "frame")),
        "sha256": file_sha256(Path(data)) if is_file else rows_sha256(scores),  # type: ignore[arg-type]
        "hashed": FILE_BYTES if is_file else LABELLED_ROWS,
        **(
            {"first_ts": ts.min().date().isoformat(), "last_ts": ts.max().date().isoformat()}
            if ts is not None
            else {}
        ),
    }
