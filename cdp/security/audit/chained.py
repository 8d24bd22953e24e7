"""What every `AuditLog` adapter shares: the keys (loaded lazily, a new log sealed), building and MAC'ing
the next record, checking a head against the latest signed checkpoint before appending to it, signing the
new head, and the verdict of `verify()`. An adapter adds only storage: how records are read in seq order,
and how one record is appended atomically after the head it read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import takewhile
from typing import Any

from cdp.security.audit.chain import ChainWalk, record_mac, walk_chain
from cdp.security.audit.checkpoints.port import AuditCheckpoints, Checkpoint, sign_checkpoint
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import KEYED_MAC, AuditIntegrityError, AuditRecord, VerifyResult
from cdp.security.audit.verdict import judge

_SCALARS = (str, int, float, bool, type(None))

RowsAfter = Callable[[int], Iterable[AuditRecord]]  # records with seq > n, in seq order


def checked_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """A record's details: a flat mapping of string keys to scalars (no nested PII can hide in it)."""
    out = dict(details or {})
    bad = [k for k, v in out.items() if not isinstance(k, str) or not isinstance(v, _SCALARS)]
    if bad:
        raise TypeError(f"audit details must be flat scalars; offending keys: {bad}")
    return out


class ChainedAuditLog:
    """Base of the audit-log adapters: the MAC chain and its checkpoints, storage left to the subclass.

    `keys` may be a loader, called on first append or verify (so building the log reaches no key service).
    When the loaded keys were just created, `_seal` is called once to sign the log's first head.
    """

    def __init__(self, keys: AuditKeys | Callable[[], AuditKeys], checkpoints: AuditCheckpoints) -> None:
        self.checkpoints = checkpoints
        self._keys_or_loader = keys
        self._loaded: AuditKeys | None = None
        self._load_lock = threading.Lock()
        self._covered: tuple[int, str] | None = None  # a head this object knows is signed

    # -- keys and sealing -------------------------------------------------------------------------------
    @property
    def _keys(self) -> AuditKeys:
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    k = self._keys_or_loader
                    loaded = k if isinstance(k, AuditKeys) else k()
                    if loaded.created:
                        self._seal(loaded)
                    self._loaded = loaded
        return self._loaded

    def _seal(self, keys: AuditKeys) -> None:
        """Sign the first head (the adapter calls `_seal_unsigned` with its own locking)."""
        raise NotImplementedError

    def _seal_unsigned(self, keys: AuditKeys, records: Iterable[AuditRecord]) -> None:
        """First checkpoint, by the creator of the checkpoint key: signs the current head (an empty log, or
        records written before keyed auditing) if the chain is intact and no checkpoint exists yet."""
        try:
            if self.checkpoints.latest() is not None:
                return
        except AuditIntegrityError:
            return  # verify() reports it; appends refuse
        walk = walk_chain(records, keys.mac_key)
        if walk.ok:
            self.checkpoints.append(sign_checkpoint(keys.checkpoint_key, walk.records, walk.head))

    # -- appending -------------------------------------------------------------------------------------
    def _next_record(
        self,
        head_seq: int,
        head: str,
        *,
        actor: str,
        role: str,
        action: str,
        customer_token: str,
        fields: Sequence[str],
        outcome: str,
        details: Mapping[str, Any],
    ) -> AuditRecord:
        """The record that follows `(head_seq, head)`, MAC'd under the record key."""
        doc: dict[str, Any] = {
            "seq": head_seq + 1,
            "ts": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "role": role,
            "action": action,
            "customer_token": customer_token,
            "fields": tuple(sorted(fields)),
            "outcome": outcome,
            "details": dict(details),
            "prev_hash": head,
        }
        return AuditRecord(**doc, hash=record_mac(self._keys.mac_key, doc), mac_alg=KEYED_MAC)

    def _check_head(
        self, head_seq: int, head: str, rows_after: RowsAfter, checkpoint: Checkpoint | None = None
    ) -> None:
        """Before appending to a head this object did not sign: the latest checkpoint (read now, or given,
        read before the head) must be genuine and cover the log, except for records beyond it whose MACs
        chain from it (a writer stopped before signing them, or one still signing); anything else means
        tampering, and nothing is appended. Records beyond the head (appended since it was read) are not
        looked at."""
        if self._covered == (head_seq, head):
            return
        cp = checkpoint if checkpoint is not None else self.checkpoints.latest()
        if cp is None:
            raise AuditIntegrityError("the audit log has no signed checkpoint (store missing or emptied)")
        if not cp.signature_ok(self._keys.checkpoint_key):
            raise AuditIntegrityError(f"the latest audit checkpoint (count {cp.count}) has a bad signature")
        if cp.count > head_seq:
            raise AuditIntegrityError(
                f"the audit log ends at seq {head_seq} but a signed checkpoint covers {cp.count} records"
            )
        if cp.count == head_seq and cp.head != head:
            raise AuditIntegrityError(f"audit record {head_seq} does not match the signed checkpoint")
        if cp.count < head_seq:
            walk = walk_chain(
                takewhile(lambda r: r.seq <= head_seq, rows_after(cp.count)), self._keys.mac_key,
                start_seq=cp.count + 1, prev=cp.head, allow_legacy=False,
            )  # fmt: skip
            if not walk.ok or walk.head != head:
                raise AuditIntegrityError(
                    f"audit record {walk.first_broken_seq or head_seq} after the last signed checkpoint "
                    f"fails verification: {walk.reason or 'head mismatch'}"
                )
        self._covered = (head_seq, head)

    def append_many(self, entries: Sequence[Mapping[str, Any]]) -> list[AuditRecord]:
        """One record per entry, in order (adapters that can store a batch at once override this); every
        entry's details are checked before the first is appended."""
        for entry in entries:
            checked_details(entry.get("details"))
        return [self.append(**entry) for entry in entries]  # type: ignore[attr-defined]

    def _sign(self, record: AuditRecord) -> None:
        """Sign the head that `record` (just stored) makes."""
        self.checkpoints.append(sign_checkpoint(self._keys.checkpoint_key, record.seq, record.hash))
        self._covered = (record.seq, record.hash)

    # -- verifying -------------------------------------------------------------------------------------
    def _latest_checkpoint(self) -> tuple[Checkpoint | None, str | None]:
        """The latest checkpoint, or the problem reading it."""
        try:
            return self.checkpoints.latest(), None
        except AuditIntegrityError as e:
            return None, str(e)

    def _verdict(self, walk: ChainWalk, checkpoint: Checkpoint | None, problem: str | None) -> VerifyResult:
        return judge(walk, checkpoint, problem, self._keys.checkpoint_key)
