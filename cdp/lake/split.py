"""The time split between batch history (oldest ~95%) and the real-time stream (newest ~5%).

One rule, computed once and kept in the state folder so the batch job and the stream producer always
agree on which rows each of them owns: over the accepted transactions, the cutoff is the timestamp at
position floor(n * (1 - fraction)) in time order, and a row belongs to the stream iff `ts >= cutoff`
(rows tied with the cutoff go to the stream, so its share is at least `fraction`). A fraction of 0
streams nothing: the cutoff is one second after the newest row, so every row is the batch job's.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Split:
    source: str  # name of the transactions source
    fraction: float  # requested stream share
    cutoff: datetime  # first timestamp of the stream part
    rows: int  # accepted rows the split was computed over
    stream_rows: int  # of which with ts >= cutoff


def compute_split(source: str, timestamps: pa.Array | pa.ChunkedArray, fraction: float) -> Split:
    """The split of `timestamps` (timestamp[s], the accepted rows' `ts`)."""
    ts = np.asarray(timestamps.cast(pa.timestamp("s")).to_numpy(zero_copy_only=False), dtype="datetime64[s]")
    return split_of_seconds(source, [ts.view(np.int64)], fraction)


def split_of_seconds(source: str, parts: Sequence[np.ndarray], fraction: float) -> Split:
    """The split of the accepted rows' times, as int64 seconds since the epoch in any number of arrays.

    Only the newest rows can hold the cutoff: a threshold from a sample keeps a few percent more than the
    stream's share, and the exact order statistic is taken among those (0.05 s instead of 0.7 s at 24M
    rows); if the sample misjudged, the whole set is used."""
    n = sum(p.size for p in parts)
    if n == 0:
        raise ValueError(f"{source}: no accepted transactions to split")
    if fraction <= 0:  # all history to the lake: a cutoff after the newest row
        newest = max(int(p.max()) for p in parts if p.size)
        return Split(source, fraction, np.int64(newest + 1).astype("datetime64[s]").astype(datetime), n, 0)
    k = min(n - 1, int(np.floor(n * (1.0 - fraction))))
    wanted = n - k  # rows at or above the k-th smallest
    rng = np.random.default_rng(0)
    sample = np.concatenate([p[rng.integers(0, p.size, min(p.size, 20_000))] for p in parts if p.size])
    threshold = np.quantile(sample, max(0.0, 1.0 - 1.5 * fraction - 0.01), method="lower")
    newest = np.concatenate([p[p >= threshold] for p in parts])
    if newest.size >= wanted:  # the k-th smallest of all is the (newest.size - wanted)-th of these
        cutoff = np.partition(newest, newest.size - wanted)[newest.size - wanted]
    else:
        everything = np.concatenate(parts)
        cutoff = np.partition(everything, k)[k]
        newest = everything
    stream_rows = int(np.count_nonzero(newest >= cutoff))
    moment = np.int64(cutoff).astype("datetime64[s]").astype(datetime)
    return Split(source, fraction, moment, n, stream_rows)


def source_name(files: list[Path]) -> str:
    return files[0].name if len(files) == 1 else f"{files[0].name} (+{len(files) - 1} files)"


def read_split(state_file: Path) -> Split | None:
    """The split recorded in `state_file`, whatever its source, or None before one was recorded."""
    if not state_file.exists():
        return None
    data = json.loads(state_file.read_text())
    return Split(**{**data, "cutoff": datetime.fromisoformat(data["cutoff"])})


def recorded_split(state_file: Path, source: str, fraction: float) -> Split | None:
    """The split recorded for this source and fraction, if any."""
    split = read_split(state_file)
    if split is None or split.source != source or split.fraction != fraction:
        return None
    return split


def load_or_compute_split(
    state_file: Path,
    source: str,
    fraction: float,
    timestamps: Callable[[], pa.Array | pa.ChunkedArray | Sequence[np.ndarray]],
) -> Split:
    """The recorded split, or one computed from `timestamps()` (timestamp[s] values, or arrays of int64
    seconds) and recorded."""
    split = recorded_split(state_file, source, fraction)
    if split is not None:
        return split
    given = timestamps()
    if isinstance(given, pa.Array | pa.ChunkedArray):
        split = compute_split(source, given, fraction)
    else:
        split = split_of_seconds(source, given, fraction)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({**asdict(split), "cutoff": split.cutoff.isoformat()}, indent=2))
    tmp.replace(state_file)
    return split
