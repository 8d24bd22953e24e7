"""How the batch job cuts its transactions files into shards, the job's unit of work and of resume.

A shard is a run of consecutive bytes of the source, cut on line ends: one or more pieces, each a byte
range of one file. Shards are of (nearly) equal size and their number is a multiple of the worker count,
so the workers end together. The plan is recorded when the job first runs and reused by every resumed
run, whatever the settings then, so a shard always holds the same rows and writes the same files.

A piece that starts inside a file needs the file line it starts at; counting the line ends before it is
left to `LineOffsets` (cdp.batch.lines), which does it while the shards are already being read.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Piece:
    """Bytes `start`..`end` of one transactions file (data lines only, cut on line ends)."""

    path: Path
    start: int
    end: int
    at_file_start: bool  # the piece starts at the file's first data line (line 2)


@dataclass(frozen=True)
class Shard:
    index: int
    name: str
    pieces: tuple[Piece, ...]

    @property
    def bytes(self) -> int:
        return sum(p.end - p.start for p in self.pieces)


def data_range(path: Path) -> tuple[int, int]:
    """The byte range of a file's data lines (after the header line)."""
    with open(path, "rb") as f:
        header = len(f.readline())
        return header, os.fstat(f.fileno()).st_size


def line_end_at_or_after(f: Any, position: int, end: int) -> int:
    """The first byte after the line that holds byte `position - 1` (a cut on a line end), at most `end`."""
    if position >= end:
        return end
    f.seek(position - 1)
    rest = f.readline()
    return min(end, position - 1 + len(rest))


def shard_count(data_bytes: int, shard_bytes: int, workers: int) -> int:
    """Shards of at most about `shard_bytes`, as a multiple of `workers` (at least one)."""
    n = max(1, -(-data_bytes // shard_bytes))
    workers = max(1, workers)
    return -(-n // workers) * workers


def plan_shards(files: Sequence[Path], shard_bytes: int, workers: int) -> list[Shard]:
    """Cut the data lines of `files` (in order) into equal shards on line ends: shard k ends at the first
    line end at or after k+1 n-ths of all the data bytes (as if the files were one)."""
    ranges = [data_range(p) for p in files]
    total = sum(end - start for start, end in ranges)
    n = shard_count(total, shard_bytes, workers)
    bounds = [total * (k + 1) // n for k in range(n - 1)]  # in bytes of data before the cut
    shards: list[list[Piece]] = [[]]
    before = 0  # data bytes of the earlier files
    for path, (start, end) in zip(files, ranges, strict=True):
        position = start
        with open(path, "rb") as f:
            while position < end:
                wanted = start + bounds[len(shards) - 1] - before if len(shards) < n else end
                cut = line_end_at_or_after(f, max(wanted, position), end)
                if cut > position:
                    shards[-1].append(Piece(Path(path), position, cut, at_file_start=position == start))
                    position = cut
                if len(shards) < n and before + (position - start) >= bounds[len(shards) - 1]:
                    shards.append([])
        before += end - start
    shards = [s for s in shards if s]
    digest = hashlib.sha256("\n".join(Path(p).name for p in files).encode()).hexdigest()[:8]
    return [Shard(i, f"{digest}-s{i:04d}", tuple(pieces)) for i, pieces in enumerate(shards)]


def plan_record(shards: Sequence[Shard]) -> list[dict[str, Any]]:
    """The plan as recorded in the job's manifest (file names, not paths: the source folder may move)."""
    return [
        {"name": s.name, "pieces": [[p.path.name, p.start, p.end, p.at_file_start] for p in s.pieces]}
        for s in shards
    ]


def plan_from_record(record: Sequence[dict[str, Any]], files: Sequence[Path]) -> list[Shard]:
    by_name = {p.name: Path(p) for p in files}
    missing = sorted({name for s in record for name, *_ in s["pieces"]} - set(by_name))
    if missing:
        raise FileNotFoundError(
            f"the recorded batch plan reads {', '.join(missing)}, not in the source folder"
        )
    return [
        Shard(i, s["name"], tuple(Piece(by_name[n], a, b, bool(first)) for n, a, b, first in s["pieces"]))
        for i, s in enumerate(record)
    ]
