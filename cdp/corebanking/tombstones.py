"""Keep erased customers out of core banking: rows of a tombstoned user go to the quarantine, not the store.

Used by the loader (users and cards files) and the stream producer (transactions). A quarantine entry
for such a row holds the file, the line and the reason "erased" only: no field, no raw text, no value.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from cdp.ibm.quarantine import Quarantine
from cdp.oltp.port import OltpStore

ERASED = "erased"


def erased_users(store: OltpStore) -> set[int]:
    """The user ids core banking holds a tombstone for."""
    return {e.user for e in store.iter_erasures()}


def erased_mask(rows: pa.Table, users: set[int]) -> pa.Array:
    """True for the rows whose `user` is in `users`."""
    if not users or rows.num_rows == 0:
        return pa.array([False] * rows.num_rows, pa.bool_())
    return pc.fill_null(
        pc.is_in(rows["user"], pa.array(sorted(users), rows.schema.field("user").type)), False
    )


def quarantine_erased(rows: pa.Table, users: set[int], quarantine: Quarantine, file: str) -> pa.Table:
    """`rows` without those of erased `users`; each of those goes to `quarantine` as (file, line, "erased").

    The file's read statistics are kept reconciled: each such row moves from accepted to quarantined.
    """
    mask = erased_mask(rows, users)
    gone = rows.filter(mask)
    if gone.num_rows == 0:
        return rows
    for line in gone["line"].to_pylist():
        quarantine.add(file, line, None, ERASED, None)
    stats = quarantine.stats.get(file)
    if stats is not None:
        stats.rows_accepted -= gone.num_rows
        stats.rows_quarantined += gone.num_rows
    return rows.filter(pc.invert(mask))
