"""The time split between batch history (oldest ~95%) and the real-time stream (newest ~5%).

One rule, computed once and kept in the state folder so the batch job and the stream producer always
agree on which rows each of them owns: over the accepted transactions, the cutoff is the timestamp at
position floor(n * (1 - fraction)) in time order, and a row belongs to the stream iff `ts >= cutoff`
(rows tied with the cutoff go to the stream, so its share is at least `fraction`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
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
    if ts.size == 0:
        raise ValueError(f"{source}: no accepted transactions to split")
    k = min(ts.size - 1, int(np.floor(ts.size * (1.0 - fraction))))
    # Partition the int64 view: numpy's partition of datetime64 is ~15x slower (3.3 s vs 0.2 s at 24M).
    cutoff = np.partition(ts.view(np.int64), k)[k].astype("datetime64[s]")
    stream_rows = int((ts >= cutoff).sum())
    return Split(source, fraction, cutoff.astype(datetime), int(ts.size), stream_rows)


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
    state_file: Path, source: str, fraction: float, timestamps: Callable[[], pa.Array | pa.ChunkedArray]
) -> Split:
    """The recorded split, or one computed from `timestamps()` and recorded."""
    split = recorded_split(state_file, source, fraction)
    if split is not None:
        return split
    split = compute_split(source, timestamps(), fraction)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps({**asdict(split), "cutoff": split.cutoff.isoformat()}, indent=2))
    tmp.replace(state_file)
    return split
