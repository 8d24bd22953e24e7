"""Fraud preprocess (Processing step): the feature query's result -> train / validation / test Parquet.

Input: `OPT_ML/processing/input/features/*.parquet`, the rows of `fraud_training_set` (a `split` column
with train / validation / test by whole months, unlabelled months already left out, the label
`is_fraud`, keys and the `fraud_card` features). Output: `OPT_ML/processing/output/<split>/<split>.parquet`
holding the keys kept for evaluation joins (`txn_id`, `event_seq`, `ts`), the label as 0/1, on the train
split a `sample_weight` column, and the features as float32 columns, rows in time order. The split comes
from the data, never from a random draw.

Text columns are one-hot encoded (`<column>__<value>`) with the values seen in the train split; booleans
become 0/1; missing values stay missing (NaN, which the trees route on their own). The ordered feature
list and the encoding go to `train/feature_spec.json`; train.py copies it into the model folder so
evaluation and serving apply the same encoding (`encode_features`, also imported by serving).

Files per split (`--files-per-split`, the pipeline passes its `TrainingInstanceCount`): with N > 1 each
split is written as N files `<split>-00000.parquet` ... of about equal rows, consecutive in time (name
order is time order), so SageMaker's `ShardedByS3Key` gives every training host some of the train rows,
and a reader of the whole folder in name order sees the same rows in the same order as from one file.
The feature spec is written beside the train and the validation rows (a host whose train shards lack it
reads the replicated validation copy).

Memory: the input is streamed, never loaded whole. At full size (22.3M rows, 53 columns) loading it into
pandas, sorting and encoding took 20.5 GB and was killed (at 2M rows it took 3.7 GB); streamed it peaks
at 0.63 GB at 2M and at 22.3M rows alike, 100 s for 22.3M rows (bench/results/fraud_training.json).
Sampling while reading (below) and an input in time order (the training set's sorted chunks, files read
in numeric name order) brought 23.6M rows to 39 CPU s at 0.52 GB (103 CPU s, 0.99 GB before):

1. a first pass reads only the cheap columns (split, label, the text columns, the order keys) batch by
   batch: row and fraud counts, the train split's one-hot vocabulary, and whether each split's rows are
   already in time order (the local catalog writes them so; Athena promises no order);
2. a second pass reads every column batch by batch (`BATCH_ROWS` rows), encodes each batch and appends
   it to one `ParquetWriter` per split. Splits not in time order are first spread into one temporary
   Parquet file per month of `ts`, and each month is sorted on its own (a month is a small share of
   the data), so memory is bounded by the largest month, not by the data.

Negative down-sampling (`--negative-sample-rate`, the pipeline's `NegativeSampleRate`): the train split
keeps every fraud and the genuine rows whose seeded hash of the row's key (`event_seq`, else `txn_id`)
falls below the share, so the choice is made row by row while reading, in one pass, whatever the input
order, batch size or file layout; rows are sampled before anything else is done with them (spread into
months, sorted, encoded). Kept genuine rows carry `sample_weight` = 1 / share (frauds 1), so train.py's
weighted loss sees the full data's class balance and the probabilities stay calibrated. Validation and
test are never down-sampled: early stopping, evaluation and the promotion gates see every row. "auto"
keeps every genuine row up to `AUTO_MAX_TRAIN_NEGATIVES` (4M) and samples beyond that. Measured at 22.3M
rows (19.6M train rows, 40 rounds): every row, train peaks at 7.0 GB and 367 CPU s; "auto" (20% of the
genuine rows, 4.0M rows) at 2.3 GB and 122 CPU s, with the same test PR-AUC (0.903 / 0.904) and Brier
score (0.00127 / 0.00126): past a few million genuine rows more of them cost memory and time and buy
no quality.

Only this file is shipped to the processing container: it imports no sibling module and no project code.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SPLITS = ("train", "validation", "test")
SPLIT_COLUMN = "split"
LABEL = "is_fraud"
LABEL_ALIASES = ("label",)  # the feature view's own name for the label
WEIGHT = "sample_weight"  # train split only: 1 / share of the row's class kept by down-sampling
KEPT_KEYS = ("txn_id", "event_seq", "ts")  # written with every row, never features
ORDER_KEYS = ("ts", "event_seq", "txn_id")  # time order of the output rows
NOT_FEATURES = frozenset(
    {*KEPT_KEYS, SPLIT_COLUMN, LABEL, *LABEL_ALIASES, WEIGHT, "card_token", "user_token", "year", "month"}
)
SPEC_FILE = "feature_spec.json"
BATCH_ROWS = 131_072  # rows read, encoded and written at a time (~60 MB of input per batch)
AUTO_MAX_TRAIN_NEGATIVES = 4_000_000  # "auto": genuine train rows kept before down-sampling starts
DEFAULT_SEED = 7


class PreprocessError(ValueError):
    """The feature query's result cannot be split (names the column or file, never a row value)."""


def opt_ml_root() -> Path:
    return Path(os.environ.get("CDP_OPT_ML_ROOT", "/opt/ml"))


# -- naming and encoding (shared with serving) ----------------------------------------------------------


def _safe_token(value: str) -> str:
    """A category value as a feature-name token (XGBoost rejects `[`, `]`, `<` and commas in names)."""
    return re.sub(r"[^0-9A-Za-z_]+", "_", value).strip("_").lower() or "blank"


def one_hot_name(column: str, value: str) -> str:
    return f"{column}__{_safe_token(value)}"


def encode_features(frame: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """The model's feature frame (float32, spec order) from rows with the original columns."""
    columns: dict[str, np.ndarray] = {}
    encoded = {one_hot_name(c, v): (c, v) for c, values in spec["one_hot"].items() for v in values}
    for name in spec["features"]:
        if name in encoded:
            column, value = encoded[name]
            columns[name] = (frame[column].astype("string") == value).fillna(False).to_numpy(np.float32)
        else:
            columns[name] = pd.to_numeric(frame[name], errors="coerce").astype("float32").to_numpy()
    return pd.DataFrame(columns, index=frame.index)


def _is_text(dtype: pa.DataType) -> bool:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def _is_number(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_boolean(dtype)
        or pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
    )


def text_columns(schema: pa.Schema) -> list[str]:
    """The columns one-hot encoded (text columns that are not keys, split or label)."""
    return [f.name for f in schema if f.name not in NOT_FEATURES and _is_text(f.type)]


def spec_from_schema(schema: pa.Schema, vocabulary: dict[str, set[str]]) -> dict[str, Any]:
    """The ordered feature list and one-hot encoding: numbers and booleans as they are, text columns as
    one-hot over the train split's values (`vocabulary`); timestamps and nested types are not features."""
    features: list[str] = []
    one_hot: dict[str, list[str]] = {}
    for f in schema:
        if f.name in NOT_FEATURES:
            continue
        if _is_number(f.type):
            features.append(f.name)
        elif _is_text(f.type):
            values = sorted(vocabulary.get(f.name, set()))
            one_hot[f.name] = values
            features.extend(one_hot_name(f.name, v) for v in values)
    if len(set(features)) != len(features):
        raise PreprocessError("two columns encode to the same feature name")
    return {"features": features, "one_hot": one_hot, "label": LABEL, "keys": list(KEPT_KEYS)}


def feature_spec(frame: pd.DataFrame) -> dict[str, Any]:
    """The ordered feature list and one-hot vocabulary, from the train rows of `frame`."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    train = frame[frame[SPLIT_COLUMN] == "train"]
    vocabulary = {c: {str(v) for v in train[c].dropna().unique()} for c in text_columns(table.schema)}
    return spec_from_schema(table.schema, vocabulary)


# -- sources and sinks ----------------------------------------------------------------------------------


class BatchSource(Protocol):
    """Rows that can be read more than once, a batch at a time."""

    schema: pa.Schema

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]: ...


def _name_order(path: Path) -> tuple[Any, ...]:
    """Name order with runs of digits compared as numbers: `data_2` before `data_10`, as the engine
    numbers the files of one result in the result's order."""
    parts = re.split(r"(\d+)", path.name)
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


class ParquetFolder:
    """Every Parquet file of a folder, in name order (numbers by value), read batch by batch.

    `pre_buffer` is off: with it, the reader keeps every column chunk it pre-buffered until the file is
    closed, so memory grew with the file's compressed size (2.3 GB more at 22.3M rows), not one batch."""

    def __init__(self, folder: Path, batch_rows: int = BATCH_ROWS) -> None:
        self.files = sorted(Path(folder).glob("*.parquet"), key=_name_order)
        if not self.files:
            raise PreprocessError(f"no Parquet files in {Path(folder).name}/")
        self.batch_rows = batch_rows
        self.schema = pq.read_schema(self.files[0])

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        for path in self.files:
            reader = pq.ParquetFile(path, pre_buffer=False)  # see `ParquetFolder`
            yield from reader.iter_batches(
                batch_size=self.batch_rows, columns=list(columns) if columns else None
            )


class TableSource:
    """An in-memory table read batch by batch (the in-process path of small data and tests)."""

    def __init__(self, table: pa.Table, batch_rows: int = BATCH_ROWS) -> None:
        self.table, self.schema, self.batch_rows = table, table.schema, batch_rows

    def batches(self, columns: Sequence[str] | None = None) -> Iterator[pa.RecordBatch]:
        table = self.table.select(list(columns)) if columns else self.table
        yield from table.to_batches(max_chunksize=self.batch_rows)


class Sink(Protocol):
    def write_table(self, table: pa.Table) -> None: ...


class TableCollector:
    """Keeps written tables in memory (the in-process path)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema, self.tables = schema, []

    def write_table(self, table: pa.Table) -> None:
        self.tables.append(table)

    def result(self) -> pa.Table:
        return pa.concat_tables(self.tables) if self.tables else self.schema.empty_table()


# -- pass 1: counts, vocabulary, order ------------------------------------------------------------------


def label_column(schema: pa.Schema) -> str:
    """The label's name in the input (`is_fraud`, or the feature view's `label`)."""
    names = set(schema.names)
    if LABEL in names:
        return LABEL
    alias = next((a for a in LABEL_ALIASES if a in names), None)
    if alias is None:
        raise PreprocessError(f"the feature query's result has no {LABEL!r} column")
    return alias


def _key_arrays(batch: pa.RecordBatch | pa.Table, keys: Sequence[str]) -> list[np.ndarray] | None:
    """The order keys as numpy arrays (timestamps as integers); None when a key has missing values."""
    arrays: list[np.ndarray] = []
    for key in keys:
        column = batch.column(key)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        if column.null_count:
            return None
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            column = pc.cast(column, pa.int64())
        arrays.append(column.to_numpy(zero_copy_only=False))
    return arrays


def _non_decreasing(keys: list[np.ndarray]) -> bool:
    """Whether the rows of `keys` (one array per key) are in lexicographic non-decreasing order."""
    if not keys or len(keys[0]) < 2:
        return True
    decided = np.zeros(len(keys[0]) - 1, dtype=bool)
    for values in keys:
        before, after = values[:-1], values[1:]
        if ((before > after) & ~decided).any():
            return False
        decided |= before < after
    return True


@dataclass
class Scan:
    """What the first pass learns: per-split counts, the train vocabulary, which splits are in order."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    frauds: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SPLITS, 0))
    vocabulary: dict[str, set[str]] = field(default_factory=dict)
    in_order: dict[str, bool] = field(default_factory=lambda: dict.fromkeys(SPLITS, True))
    last_key: dict[str, list[np.ndarray]] = field(default_factory=dict)
    input_rows: int = 0


def _fraud_mask(label: pa.Array) -> pa.Array:
    """True where the label says fraud (a boolean label, or a number other than 0)."""
    return label if pa.types.is_boolean(label.type) else pc.not_equal(label, 0)


def scan(source: BatchSource, label: str) -> Scan:
    """Pass 1 over the cheap columns (see the module docstring)."""
    names = set(source.schema.names)
    for column in (SPLIT_COLUMN, "txn_id"):
        if column not in names:
            raise PreprocessError(f"the feature query's result has no {column!r} column")
    texts = text_columns(source.schema)
    keys = [k for k in ORDER_KEYS if k in names]
    result = Scan(vocabulary={c: set() for c in texts})
    for batch in source.batches([SPLIT_COLUMN, label, *texts, *keys]):
        result.input_rows += batch.num_rows
        split = batch.column(SPLIT_COLUMN)
        seen = {v for v in pc.unique(split).to_pylist() if v is not None}
        if seen - set(SPLITS):
            raise PreprocessError(f"column 'split' holds values other than {', '.join(SPLITS)}")
        if batch.column(label).null_count:
            raise PreprocessError(f"column {LABEL!r} has missing labels")
        for name in seen:
            rows = batch.filter(pc.equal(split, name))
            result.rows[name] += rows.num_rows
            result.frauds[name] += int(pc.sum(pc.cast(_fraud_mask(rows.column(label)), pa.int64())).as_py())
            if name == "train":
                for column in texts:
                    values = pc.unique(rows.column(column)).to_pylist()
                    result.vocabulary[column].update(str(v) for v in values if v is not None)
            if result.in_order[name]:
                arrays = _key_arrays(rows, keys)
                if arrays is None:
                    result.in_order[name] = False
                    continue
                previous = result.last_key.get(name)
                joined = (
                    [np.concatenate([p, a]) for p, a in zip(previous, arrays, strict=True)]
                    if previous
                    else arrays
                )
                result.in_order[name] = _non_decreasing(joined)
                result.last_key[name] = [a[-1:] for a in arrays]
    if not result.rows["train"]:
        raise PreprocessError("the train split is empty")
    return result


# -- pass 2: order, sample, encode, write ---------------------------------------------------------------


def resolve_sample_rate(setting: str | float, train_negatives: int) -> float:
    """The share of genuine train rows to keep: a number in (0, 1], or "auto" (every row up to
    `AUTO_MAX_TRAIN_NEGATIVES`, that many beyond)."""
    if isinstance(setting, str) and setting.strip().lower() == "auto":
        return min(1.0, AUTO_MAX_TRAIN_NEGATIVES / train_negatives) if train_negatives else 1.0
    try:
        rate = float(setting)
    except ValueError:
        raise PreprocessError("the negative sample rate must be a number in (0, 1] or 'auto'") from None
    if not 0.0 < rate <= 1.0:
        raise PreprocessError("the negative sample rate must be a number in (0, 1] or 'auto'")
    return rate


def _month_keys(table: pa.Table | pa.RecordBatch) -> np.ndarray:
    """year * 100 + month of each row's `ts` (rows without `ts` last); one key for all without a `ts`."""
    if "ts" not in table.schema.names:
        return np.zeros(table.num_rows, dtype=np.int64)
    ts = table.column("ts")
    keys = pc.add(pc.multiply(pc.year(ts), 100), pc.month(ts))
    return pc.fill_null(keys, 999_999).to_numpy(zero_copy_only=False).astype(np.int64)


_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fixed bijection of 64-bit integers that scatters every input bit."""
    z = values.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= _MIX_1
    z ^= z >> np.uint64(27)
    z *= _MIX_2
    z ^= z >> np.uint64(31)
    return z


def row_draws(rows: pa.Table | pa.RecordBatch, seed: int) -> np.ndarray:
    """A number in [0, 1) per row, a hash of the row's own key and the seed: the same row always gets the
    same number, whatever the input order, batch size or file layout.

    The key is `event_seq` (the lake's line number, an integer: hashing it costs ~50 ms per million rows)
    when the rows have it without gaps, else `txn_id` (pandas' SipHash of the text, ~0.7 s per million)."""
    names = rows.schema.names
    column = rows.column("event_seq") if "event_seq" in names else None
    if column is not None and pa.types.is_integer(column.type) and not column.null_count:
        keys = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64).view(np.uint64)
    else:
        text = pc.cast(rows.column("txn_id"), pa.string()).to_numpy(zero_copy_only=False)
        keys = pd.util.hash_array(text.astype(object), hash_key="cdp-fraud-sample").astype(np.uint64)
    with np.errstate(over="ignore"):
        mixed = _mix64(keys ^ _mix64(np.array([seed], dtype=np.int64).view(np.uint64) + _GOLDEN))
    return (mixed >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class NegativeSampler:
    """Keeps every fraud, every row of the evaluation splits, and the genuine train rows whose draw
    (`row_draws`: a seeded hash of the row's key) is below `rate`: one pass, order-free, reproducible."""

    def __init__(self, rate: float, seed: int, label: str) -> None:
        self.rate, self.seed, self.label = rate, seed, label

    def keep(self, rows: pa.Table | pa.RecordBatch) -> np.ndarray | None:
        """The keep mask of `rows` (any splits mixed), or None when every row is kept."""
        if self.rate >= 1.0:
            return None
        train = pc.fill_null(pc.equal(rows.column(SPLIT_COLUMN), "train"), False)
        train = train.to_numpy(zero_copy_only=False)
        if not train.any():
            return None
        frauds = _fraud_mask(rows.column(self.label)).to_numpy(zero_copy_only=False).astype(bool)
        return ~train | frauds | (row_draws(rows, self.seed) < self.rate)

    def sample(self, rows: pa.Table) -> pa.Table:
        keep = self.keep(rows)
        return rows if keep is None or keep.all() else rows.filter(pa.array(keep))


class SplitWriter:
    """Encodes ordered rows and appends them to the split sinks."""

    def __init__(
        self,
        spec: dict[str, Any],
        schema: pa.Schema,
        label: str,
        sinks: dict[str, Sink],
        sampler: NegativeSampler,
    ) -> None:
        self.spec, self.label, self.sinks, self.sampler = spec, label, sinks, sampler
        self.keys = [k for k in KEPT_KEYS if k in schema.names]
        self.inputs = [*self.keys, label, SPLIT_COLUMN, *_input_columns(spec)]
        self.written = dict.fromkeys(SPLITS, 0)
        self.written_frauds = dict.fromkeys(SPLITS, 0)

    def write(self, rows: pa.Table) -> None:
        """Sampled rows in time order (any splits mixed): each split's rows encoded and appended to its
        sink."""
        split = rows.column(SPLIT_COLUMN)
        for name in SPLITS:
            part = rows.filter(pc.fill_null(pc.equal(split, name), False))
            if not part.num_rows:
                continue
            frauds = _fraud_mask(part.column(self.label)).to_numpy(zero_copy_only=False).astype(bool)
            weights = None
            if name == "train":  # rows already sampled (`NegativeSampler.sample`): weigh the genuine ones
                weights = np.where(frauds, 1.0, 1.0 / self.sampler.rate).astype(np.float32)
            self.sinks[name].write_table(self._encode(part, frauds, weights))
            self.written[name] += part.num_rows
            self.written_frauds[name] += int(frauds.sum())

    def _encode(self, part: pa.Table, frauds: np.ndarray, weights: np.ndarray | None) -> pa.Table:
        columns: dict[str, Any] = {k: part.column(k) for k in self.keys}
        columns[LABEL] = pa.array(frauds.astype(np.int8))
        if weights is not None:
            columns[WEIGHT] = pa.array(weights)
        frame = part.select(_input_columns(self.spec)).to_pandas()
        encoded = encode_features(frame, self.spec)
        for name in self.spec["features"]:
            columns[name] = pa.array(encoded[name].to_numpy(np.float32), pa.float32())
        return pa.table(columns)


def _input_columns(spec: dict[str, Any]) -> list[str]:
    """The input columns the features are computed from, in spec order."""
    one_hot = {one_hot_name(c, v): c for c, values in spec["one_hot"].items() for v in values}
    seen: dict[str, None] = {}
    for name in spec["features"]:
        seen.setdefault(one_hot.get(name, name), None)
    for column in spec["one_hot"]:  # a text column with no train values still exists in the input
        seen.setdefault(column, None)
    return list(seen)


def output_schema(spec: dict[str, Any], schema: pa.Schema, split: str) -> pa.Schema:
    """Keys (input types), the 0/1 label, on train the weight, and the float32 features."""
    fields = [schema.field(k) for k in KEPT_KEYS if k in schema.names]
    fields.append(pa.field(LABEL, pa.int8()))
    if split == "train":
        fields.append(pa.field(WEIGHT, pa.float32()))
    fields += [pa.field(name, pa.float32()) for name in spec["features"]]
    return pa.schema(fields)


def _sort(table: pa.Table) -> pa.Table:
    keys = [(k, "ascending") for k in ORDER_KEYS if k in table.schema.names]
    return table.sort_by(keys) if keys else table


def _write_in_order(source: BatchSource, columns: list[str], writer: SplitWriter) -> None:
    for batch in source.batches(columns):
        writer.write(writer.sampler.sample(pa.Table.from_batches([batch])))


def _write_by_month(source: BatchSource, columns: list[str], writer: SplitWriter) -> None:
    """Spread the sampled rows into one temporary Parquet file per month, then sort and write month by
    month (sampling first: at full size only a fifth of the train rows is spread, sorted and encoded)."""
    with tempfile.TemporaryDirectory(prefix="preprocess-months-") as tmp:
        writers: dict[int, pq.ParquetWriter] = {}
        try:
            for whole in source.batches(columns):
                batch = writer.sampler.sample(pa.Table.from_batches([whole]))
                if not batch.num_rows:
                    continue
                months = _month_keys(batch)
                for month in np.unique(months):
                    rows = batch.filter(pa.array(months == month))
                    if int(month) not in writers:
                        path = Path(tmp) / f"{int(month):07d}.parquet"
                        writers[int(month)] = pq.ParquetWriter(path, rows.schema)
                    writers[int(month)].write_table(rows)
        finally:
            for month_writer in writers.values():
                month_writer.close()
        for month in sorted(writers):
            writer.write(_sort(pq.read_table(Path(tmp) / f"{month:07d}.parquet")))


def expected_rows(found: Scan, rate: float) -> dict[str, int]:
    """Rows each split will hold (train: every fraud and about `rate` of the genuine rows)."""
    expected = dict(found.rows)
    genuine = found.rows["train"] - found.frauds["train"]
    expected["train"] = found.frauds["train"] + int(round(genuine * rate))
    return expected


def preprocess(
    source: BatchSource,
    sinks_for: Any,
    *,
    negative_sample_rate: str | float = 1.0,
    seed: int = DEFAULT_SEED,
) -> dict[str, Any]:
    """Both passes over `source`; `sinks_for(spec, schema_of, expected_rows)` returns {split: sink}.
    Returns the spec with the row counts (`rows` / `frauds`: the input's, `written_rows` /
    `written_frauds`: the outputs')."""
    label = label_column(source.schema)
    found = scan(source, label)
    spec = spec_from_schema(source.schema, found.vocabulary)
    rate = resolve_sample_rate(negative_sample_rate, found.rows["train"] - found.frauds["train"])
    sinks = sinks_for(
        spec, lambda split: output_schema(spec, source.schema, split), expected_rows(found, rate)
    )
    writer = SplitWriter(spec, source.schema, label, sinks, NegativeSampler(rate, seed, label))
    needed = [c for c in source.schema.names if c in set(writer.inputs)]
    if all(found.in_order.values()):
        _write_in_order(source, needed, writer)
    else:
        _write_by_month(source, needed, writer)
    spec["rows"] = dict(found.rows)
    spec["frauds"] = dict(found.frauds)
    spec["negative_sample_rate"] = rate
    spec["sample_seed"] = seed
    spec["written_rows"] = dict(writer.written)
    spec["written_frauds"] = dict(writer.written_frauds)
    spec["input_in_time_order"] = all(found.in_order.values())
    spec["input_rows"] = found.input_rows
    return spec


def split_frames(
    frame: pd.DataFrame, *, negative_sample_rate: str | float = 1.0, seed: int = DEFAULT_SEED
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """{split: keys + label (+ weight on train) + encoded features, in time order} and the feature spec,
    in memory (the same code path as the step, for small data)."""
    source = TableSource(pa.Table.from_pandas(frame, preserve_index=False))
    collectors: dict[str, TableCollector] = {}

    def sinks_for(spec: dict[str, Any], schema_of: Any, expected: dict[str, int]) -> dict[str, Sink]:
        collectors.update({name: TableCollector(schema_of(name)) for name in SPLITS})
        return dict(collectors)

    spec = preprocess(source, sinks_for, negative_sample_rate=negative_sample_rate, seed=seed)
    parts = {name: c.result().to_pandas() for name, c in collectors.items()}
    return parts, spec


# -- the step -------------------------------------------------------------------------------------------


class SplitFiles:
    """A split's rows as `files` Parquet files of about `rows_per_file` rows each, consecutive in time
    (`<split>.parquet` with one file, else `<split>-00000.parquet`, ...; the last file takes the rest)."""

    def __init__(self, folder: Path, split: str, schema: pa.Schema, files: int, rows_per_file: int) -> None:
        self.folder, self.split, self.schema = folder, split, schema
        self.files, self.rows_per_file = max(1, files), max(1, rows_per_file)
        self.index, self.held = 0, 0
        self.writer: pq.ParquetWriter | None = None
        if self.files == 1:  # one file, even for an empty split
            self.writer = pq.ParquetWriter(folder / f"{split}.parquet", schema)

    def _open(self) -> pq.ParquetWriter:
        if self.writer is None:
            path = self.folder / f"{self.split}-{self.index:05d}.parquet"
            self.writer = pq.ParquetWriter(path, self.schema)
        return self.writer

    def write_table(self, table: pa.Table) -> None:
        while table.num_rows:
            last = self.index == self.files - 1
            room = table.num_rows if last else self.rows_per_file - self.held
            part, table = table.slice(0, room), table.slice(room)
            self._open().write_table(part)
            self.held += part.num_rows
            if not last and self.held >= self.rows_per_file:
                self.writer.close()
                self.writer, self.index, self.held = None, self.index + 1, 0

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class ParquetSinks:
    """The splits' files under the output root (`<split>/`), `files_per_split` files each."""

    def __init__(self, root: Path, files_per_split: int = 1) -> None:
        self.root, self.files_per_split = root, max(1, files_per_split)
        self.sinks: dict[str, SplitFiles] = {}

    def __call__(self, spec: dict[str, Any], schema_of: Any, expected: dict[str, int]) -> dict[str, Sink]:
        for name in SPLITS:
            folder = self.root / name
            folder.mkdir(parents=True, exist_ok=True)
            rows_per_file = -(-expected[name] // self.files_per_split)  # ceiling
            self.sinks[name] = SplitFiles(folder, name, schema_of(name), self.files_per_split, rows_per_file)
        return dict(self.sinks)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Split, down-sample and encode the fraud training set.")
    p.add_argument("--negative-sample-rate", default="auto", help="share of genuine train rows kept, or auto")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--batch-rows", type=int, default=BATCH_ROWS)
    p.add_argument("--files-per-split", type=int, default=1, help="Parquet files per split (>= 1)")
    args, _ = p.parse_known_args(argv)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_arguments(argv)
    root = opt_ml_root()
    source = ParquetFolder(root / "processing/input/features", batch_rows=args.batch_rows)
    if args.files_per_split < 1:
        raise PreprocessError("--files-per-split must be at least 1")
    sinks = ParquetSinks(root / "processing/output", args.files_per_split)
    try:
        spec = preprocess(source, sinks, negative_sample_rate=args.negative_sample_rate, seed=args.seed)
    finally:
        sinks.close()
    spec["files_per_split"] = args.files_per_split
    for split in ("train", "validation"):  # validation is replicated on every training host
        (root / "processing/output" / split / SPEC_FILE).write_text(json.dumps(spec, indent=2))
    summary = " ".join(f"{n}={spec['rows'][n]}/{spec['frauds'][n]}" for n in SPLITS)
    print(
        f"rows={spec['input_rows']} features={len(spec['features'])} rows/frauds: {summary} "
        f"negative_sample_rate={spec['negative_sample_rate']:.4g} "
        f"train_written={spec['written_rows']['train']} "
        f"in_time_order={spec['input_in_time_order']}"
    )


if __name__ == "__main__":
    try:
        main()
    except PreprocessError as error:
        print(f"preprocess failed: {error}", file=sys.stderr)
        sys.exit(2)
    # Leave without interpreter teardown: Arrow's and XGBoost's native thread pools can abort
    # ("terminate called without an active exception", exit -6) or hang at exit once every output
    # is written (apache/arrow#34314).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
