"""The file line each piece of a batch plan starts at, counted while the shards are being read.

A shard's rows need their file lines only when they are protected (the line is part of `txn_id`) and
quarantined, which comes after they are parsed; so the workers read with lines counted from their piece's
start, and a thread of the job's process counts the line ends before each piece meanwhile (about 2.5 GB/s)
and hands the results over in shared memory. Nothing waits for the count unless a shard is read faster.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Sequence
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

from cdp.batch.plan import Piece, Shard, data_range

_BLOCK = 16 << 20
_UNKNOWN = -1
_FAILED = -2


def count_line_ends(path: Path, start: int, end: int, buffer: bytearray | None = None) -> int:
    """Line feeds in bytes `start`..`end` of a file."""
    buffer = buffer if buffer is not None else bytearray(_BLOCK)
    view = memoryview(buffer)
    count = 0
    with open(path, "rb", buffering=0) as f:
        f.seek(start)
        while start < end:
            want = min(len(buffer), end - start)
            got = f.readinto(view[:want])
            if not got:
                raise OSError(f"{path.name}: file shorter than planned (byte {start})")
            count += buffer.count(b"\n") if got == len(buffer) else bytes(view[:got]).count(b"\n")
            start += got
    return count


def _pieces(shards: Sequence[Shard]) -> list[Piece]:
    return [p for s in shards for p in s.pieces]


def first_piece(shards: Sequence[Shard], shard: Shard) -> int:
    """The plan-wide number of a shard's first piece (pieces numbered in plan order)."""
    return sum(len(s.pieces) for s in shards[: shard.index])


class LineOffsets:
    """First file line of every piece of a plan (pieces numbered in plan order), shareable with workers."""

    def __init__(self, shards: Sequence[Shard], shared: Any = None) -> None:
        self.shards = list(shards)
        self.pieces = _pieces(shards)
        self.values = shared if shared is not None else RawArray("q", max(1, len(self.pieces)))
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    @classmethod
    def for_workers(cls, shards: Sequence[Shard]) -> LineOffsets:
        ctx = multiprocessing.get_context("spawn")
        return cls(shards, ctx.RawArray("q", max(1, len(_pieces(shards)))))

    def index(self, shard: Shard, piece: int) -> int:
        """The plan-wide number of a shard's piece."""
        return first_piece(self.shards, shard) + piece

    def start(self) -> LineOffsets:
        """Count in a background thread (pieces at a file's start are known at once)."""
        for i, p in enumerate(self.pieces):
            self.values[i] = 2 if p.at_file_start else _UNKNOWN
        self._thread = threading.Thread(target=self._count, name="count-lines", daemon=True)
        self._thread.start()
        return self

    def count_now(self) -> LineOffsets:
        """Count in this thread (for runs without worker processes)."""
        for i, p in enumerate(self.pieces):
            self.values[i] = 2 if p.at_file_start else _UNKNOWN
        self._count()
        if self.error is not None:
            raise self.error
        return self

    def _count(self) -> None:
        buffer = bytearray(_BLOCK)
        try:
            by_file: dict[Path, list[int]] = {}
            for i, p in enumerate(self.pieces):
                by_file.setdefault(p.path, []).append(i)
            for path, indices in by_file.items():
                position, line = data_range(path)[0], 2
                for i in sorted(indices, key=lambda i: self.pieces[i].start):
                    piece = self.pieces[i]
                    line += count_line_ends(path, position, piece.start, buffer)
                    position = piece.start
                    self.values[i] = line
        except BaseException as exc:  # noqa: BLE001 - the waiting worker reports it
            self.error = exc
            for i in range(len(self.pieces)):
                if self.values[i] == _UNKNOWN:
                    self.values[i] = _FAILED

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error


def wait_for_line(values: Any, index: int, what: str, timeout: float = 3600.0) -> int:
    """The counted first line of piece `index` (from a worker), waiting for the count if need be."""
    deadline = time.monotonic() + timeout
    while True:
        value = int(values[index])
        if value >= 0:
            return value
        if value == _FAILED:
            raise RuntimeError(f"{what}: counting the lines before it failed in the job's process")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: its first line was not counted in {timeout:.0f} s")
        time.sleep(0.005)
