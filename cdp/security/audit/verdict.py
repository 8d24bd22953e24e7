"""The verdict of `verify()`: a chain walk judged against the latest signed checkpoint.

Rules, in order (the first that fails is reported, naming the first bad seq where there is one):
1. every record's seq, prev_hash and MAC (or legacy hash) are right (see `chain.walk_chain`);
2. a readable checkpoint exists (a missing or emptied store fails: the audit keys' creator signed one
   before any record could be written) and its signature verifies under the checkpoint key;
3. the log holds at least the checkpoint's count of records (else: tail deleted, emptied, rolled back);
4. the record at that count has the checkpoint's head MAC (else: log replaced);
5. no record lies beyond the checkpoint. Such records were not signed: written outside the audit API, or
   the writer stopped between committing a record and signing the new head. They are reported as
   failures; the next append heals the second case only after checking their MACs against the key.
"""

from __future__ import annotations

from cdp.security.audit.chain import ChainWalk
from cdp.security.audit.checkpoints.port import Checkpoint
from cdp.security.audit.port import VerifyResult


def judge(
    walk: ChainWalk, checkpoint: Checkpoint | None, checkpoint_problem: str | None, checkpoint_key: bytes
) -> VerifyResult:
    """Apply the rules above to a finished walk and the latest checkpoint (or the error reading it)."""
    cp = checkpoint
    n = walk.records

    def result(ok: bool, seq: int | None = None, reason: str | None = None) -> VerifyResult:
        return VerifyResult(
            ok,
            n,
            seq,
            reason,
            walk.head,
            legacy_records=walk.legacy,
            checkpoint_count=cp.count if cp else None,
        )

    if not walk.ok:
        return result(False, walk.first_broken_seq, walk.reason)
    if checkpoint_problem is not None:
        return result(False, None, f"checkpoint store altered: {checkpoint_problem}")
    if cp is None:
        return result(
            False, 1 if n else None, "no signed checkpoint: the checkpoint store is missing or emptied"
        )
    if not cp.signature_ok(checkpoint_key):
        return result(
            False,
            None,
            f"the latest checkpoint (count {cp.count}) has a bad signature: checkpoint store altered",
        )
    if n < cp.count:
        return result(
            False,
            n + 1,
            f"log ends at seq {n} but the latest signed checkpoint covers {cp.count} records: "
            "records deleted from the end, log emptied or rolled back",
        )
    if walk.marked != cp.head:
        return result(False, cp.count or None, "does not match the signed checkpoint's head: log replaced")
    if n > cp.count:
        return result(
            False,
            cp.count + 1,
            f"records {cp.count + 1}..{n} are not covered by a signed checkpoint: written outside the audit "
            "API, or the writer stopped before signing (the next append checks and signs them)",
        )
    return result(True)
