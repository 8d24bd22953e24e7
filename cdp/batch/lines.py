"""The file line each piece of a batch plan starts at, from the line counts the workers find.

A shard's rows need their file lines only when they are protected (the line is part of `txn_id`) and
quarantined, after they are parsed. So each worker reads its pieces with lines counted from the piece's
start and publishes each piece's line count in shared memory as soon as it has parsed it (the typed fast
path counts its rows, which are its lines; the text path counts line ends); the first line of a piece is
2 plus the counts of the pieces of the same file before it. Shards are handed out in plan order, so the
pieces a shard waits for are parsed by shards that started before it: nothing counts the file twice, and
a wait, if any, is short. When a shard fails the job marks every missing count as failed, so no worker
waits for a count that will never come.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from typing import Any

from cdp.batch.plan import Shard

_UNKNOWN = -1
_FAILED = -2


def shared_counters(n: int) -> Any:
    """`n` int64 counters in shared memory, handed to worker processes when they start."""
    return multiprocessing.get_context("spawn").RawArray("q", max(1, n))


def first_piece(shards: Sequence[Shard], shard: Shard) -> int:
    """The plan-wide number of a shard's first piece (pieces numbered in plan order)."""
    return sum(len(s.pieces) for s in shards[: shard.index])


def file_starts(shards: Sequence[Shard]) -> list[int]:
    """For each piece (plan order), the number of the first piece of its file."""
    starts: list[int] = []
    for i, piece in enumerate(p for s in shards for p in s.pieces):
        starts.append(i if piece.at_file_start or not starts else starts[-1])
    return starts


class PieceLines:
    """Line counts of the pieces of a plan, in memory shared with the worker processes."""

    def __init__(self, pieces: int) -> None:
        self.values = shared_counters(pieces)
        for i in range(len(self.values)):
            self.values[i] = _UNKNOWN

    def abort(self) -> None:
        """Mark every count not yet known as failed: workers waiting for one stop waiting."""
        for i in range(len(self.values)):
            if self.values[i] == _UNKNOWN:
                self.values[i] = _FAILED


def publish_count(values: Any, piece: int, lines: int) -> None:
    values[piece] = lines


def first_line(values: Any, file_start: int, piece: int, what: str, timeout: float = 3600.0) -> int:
    """The file line piece `piece` starts at: 2 plus the line counts of the pieces `file_start`..`piece - 1`
    (waiting for those still being parsed)."""
    deadline = time.monotonic() + timeout
    line = 2
    for j in range(file_start, piece):
        while (count := int(values[j])) < 0:
            if count == _FAILED:
                raise RuntimeError(f"{what}: the shard reading the lines before it failed")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: the lines before it were not counted in {timeout:.0f} s")
            time.sleep(0.005)
        line += count
    return line
