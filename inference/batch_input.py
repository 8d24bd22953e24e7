"""What batch scoring reads: an IBM-format transactions file, a lake table or a frame, as protected lake rows.

An IBM file is read by the batch job's own reader (`cdp.ibm.reader`: same checks, bad rows quarantined with
a reason) and protected as extraction protects it (`cdp.lake.transactions`: keyed card and customer tokens,
`txn_id` from the card token and the file line), so the scored rows carry tokens only. A file without the
`Is Fraud?` column (what a bank scores before labels exist) is read the same way, its label left empty.
Rows are quarantined when their customer was erased (no token can be made) or their card is not in the
lake's `cards` table (as the batch job quarantines cards missing from the cards file). For every input,
`rows_in == accepted + quarantined`.

The quarantine of batch scoring keeps no source text and quotes no user id or card index: file, line, field
and reason only.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cdp.backends import Backends
from cdp.ibm.quarantine import Quarantine, QuarantineRecorder
from cdp.ibm.reader import read_transactions
from cdp.ibm.rows import check_header
from cdp.ibm.schema import TRANSACTIONS_HEADER
from cdp.lake.tables import TRANSACTIONS_LAKE_SCHEMA
from cdp.lake.transactions import ERASED_REASON, protect_transactions_for_lake, split_erased

LABEL_HEADER = "Is Fraud?"
UNKNOWN_CARD_REASON = "unknown card"
_ID_FIELDS = ("User", "Card")  # reasons on these fields would quote ids: kept without their detail
_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class BatchInputError(ValueError):
    """The input cannot be scored as a whole (not a transactions file, unknown table, wrong columns)."""


@dataclass
class BatchInput:
    """Rows to score: protected lake rows (`rows`, lake transactions schema) whose features are still to be
    computed, or rows that already hold the view's features (`features`); never both."""

    source: str  # the file name or table name (no folder)
    row_ids: pa.Array  # per accepted row: its file line (files) or 1-based position (tables, frames)
    rows: pa.Table | None = None
    features: pa.Table | None = None
    # the rows' cards as the lake holds them (`features.point_in_time.lake_cards`), when read
    cards: pa.Table | None = None
    labelled: bool = True
    rows_in: int = 0
    quarantined: int = 0
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    quarantine_path: Path | None = None

    @property
    def accepted(self) -> int:
        return len(self.row_ids)


def file_header(path: Path) -> list[str]:
    import csv

    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return next(csv.reader([f.readline(1 << 16).rstrip("\r\n")]), [])
    except (UnicodeDecodeError, OSError):
        return []


def _labelled_copy(path: Path, folder: Path) -> Path:
    """A copy of an unlabelled transactions file with `Is Fraud?` added as "No" on every row (same name,
    same lines), so the one reader parses it; the labels are dropped again after reading."""
    copy = folder / path.name
    with open(path, encoding="utf-8-sig", newline="") as src, open(copy, "w", encoding="utf-8") as dst:
        dst.write(",".join(TRANSACTIONS_HEADER) + "\n")
        src.readline()
        for line in src:
            text = line.rstrip("\r\n")
            dst.write(f"{text},No\n" if text else "\n")
    return copy


def _replay_without_text(recorder: QuarantineRecorder, quarantine: Quarantine) -> None:
    for file, line, fld, reason, _raw, detail in recorder.records:
        quarantine.add(file, line, fld, reason, None, None if fld in _ID_FIELDS else detail)


def read_transactions_file(path: Path, backends: Backends, quarantine: Quarantine) -> BatchInput:
    """An IBM transactions file as protected lake rows, bad rows quarantined (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise BatchInputError(f"{path.name}: no such file")
    header = file_header(path)
    labelled = header == list(TRANSACTIONS_HEADER)
    unlabelled = header == [h for h in TRANSACTIONS_HEADER if h != LABEL_HEADER]
    if not (labelled or unlabelled):
        check_header(path, TRANSACTIONS_HEADER, quote_found=True)  # raises a one-line SourceFormatError
    scratch = Path(tempfile.mkdtemp(prefix="cdp-score-"))
    recorder = QuarantineRecorder()
    try:
        source = path if labelled else _labelled_copy(path, scratch)
        clean = read_transactions(source, recorder)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _replay_without_text(recorder, quarantine)
    bad_rows = len(recorder.records)
    rows_in = clean.num_rows + bad_rows
    live, erased = split_erased(backends.protector, clean)
    for line in erased["line"].to_pylist():
        quarantine.add(path.name, line, None, ERASED_REASON, None)
    rows = protect_transactions_for_lake(backends.protector, live) if live.num_rows else None
    lines = live["line"]
    cards = None
    if rows is not None:
        cards = _lake_cards(backends, rows)
        known = cards["card_token"].combine_chunks()
        unknown = pc.invert(pc.is_in(rows["card_token"], value_set=known))
        for line in lines.filter(unknown).to_pylist():
            quarantine.add(path.name, line, "Card", UNKNOWN_CARD_REASON, None)
        rows, lines = rows.filter(pc.invert(unknown)), lines.filter(pc.invert(unknown))
        if not labelled:
            rows = rows.set_column(
                rows.schema.get_field_index("is_fraud"), "is_fraud", pa.nulls(rows.num_rows, pa.bool_())
            )
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    accepted = 0 if rows is None else rows.num_rows
    return BatchInput(
        source=path.name,
        row_ids=lines if rows is not None else pa.array([], pa.int64()),
        rows=rows if rows is not None else TRANSACTIONS_LAKE_SCHEMA.empty_table(),
        labelled=labelled,
        rows_in=rows_in,
        quarantined=rows_in - accepted,
        cards=cards,
    )


def _lake_cards(backends: Backends, rows: pa.Table) -> pa.Table:
    """The lake's card attributes of the rows' cards (the cards the lake knows)."""
    from features.point_in_time import lake_cards

    return lake_cards(backends.catalog, pc.unique(rows["card_token"]).to_pylist())


def from_table(table: pa.Table, source: str, feature_names: list[str]) -> BatchInput:
    """Rows of a lake table or a frame: feature rows when they hold every view feature, else transactions in
    the lake schema (their features computed); `BatchInputError` otherwise."""
    names = set(table.column_names)
    ids = pa.array(range(1, table.num_rows + 1), pa.int64())
    label = "is_fraud" if "is_fraud" in names else ("label" if "label" in names else None)
    if set(feature_names) <= names:
        if label == "label":
            table = table.rename_columns(["is_fraud" if n == "label" else n for n in table.column_names])
        return BatchInput(source, ids, features=table, labelled=label is not None, rows_in=table.num_rows)
    missing = [n for n in TRANSACTIONS_LAKE_SCHEMA.names if n not in names]
    if missing:
        raise BatchInputError(
            f"{source}: neither transactions (lacks {', '.join(missing[:4])}) nor feature rows of the model"
        )
    labelled = label == "is_fraud" and table["is_fraud"].null_count < table.num_rows
    rows = table.select(TRANSACTIONS_LAKE_SCHEMA.names).cast(TRANSACTIONS_LAKE_SCHEMA)
    return BatchInput(source, ids, rows=rows, labelled=labelled, rows_in=table.num_rows)


def read_lake_table(name: str, backends: Backends, feature_names: list[str]) -> BatchInput:
    """Every row of a lake table (by its catalog name)."""
    if not _TABLE_NAME.match(name) or not any(t.name == name for t in backends.catalog.tables()):
        raise BatchInputError(f"{name}: neither a file nor a lake table")
    return from_table(backends.catalog.query(f"SELECT * FROM {name}"), name, feature_names)


def from_frame(frame: pd.DataFrame | pa.Table, feature_names: list[str]) -> BatchInput:
    """A pandas or Arrow frame (lake transactions or feature rows)."""
    table = frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
    return from_table(table, "frame", feature_names)
