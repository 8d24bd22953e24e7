"""Online store port: opaque state blobs by key, read and written in batches.

Callers keep live state in memory and call the store once per batch of events (`get_many` for the keys
a batch touches, `put_many` for the states it changed), so the per-event path never does I/O.
Adapters: `cdp.online.local` (dict in memory, snapshot to SQLite) and `cdp.online.dynamodb`.
An adapter whose reads never leave the process (no network) says so with a class attribute
`reads_in_process = True`: a server may then read on its event loop instead of a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol, runtime_checkable


@runtime_checkable
class OnlineStore(Protocol):
    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The stored state of each key that has one (missing keys are absent from the result)."""
        ...

    def put_many(self, items: Mapping[str, bytes]) -> None:
        """Create or replace the state of every key given."""
        ...

    def delete_many(self, keys: Iterable[str]) -> None:
        """Forget these keys (no error for unknown ones)."""
        ...

    def keys(self, prefix: str = "") -> list[str]:
        """Every stored key starting with `prefix`, sorted."""
        ...

    def snapshot(self) -> int:
        """Make every write so far durable; returns how many keys were written (0 when always durable)."""
        ...
