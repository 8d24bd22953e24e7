"""Master-key rotation: a new master version, every live data key re-wrapped under it, then (optionally)
the old versions retired. One audited operation, resumable, safe while the platform keeps running.

Why it is safe to run at any time:
- a data key's plaintext never changes, only its wrapping, so ciphertexts in the lake, stream and backups
  stay valid, and caches of unwrapped keys stay right;
- each entry is swapped on its own with a compare-and-swap (`DataKeyStore.swap`): a reader sees the old or
  the new wrapping, both of which unwrap while the old master version exists; an entry erased or replaced
  meanwhile is left alone (an erasure is never undone);
- old master versions are deleted only by `retire_old`, and only once no live entry names them;
- a crash leaves every entry readable; the journal (`<state>/key_rotation.json`) makes a re-run finish the
  same rotation instead of starting another.
The entry's encryption context is the stored one, or derived by `keycontexts.entry_context` for entries
written before contexts were stored (and stored by the swap). Entries without either are reported, never
guessed at, and keep the rotation incomplete.

In AWS the master key is a KMS key: KMS rotates its key material (EnableKeyRotation yearly, or
RotateKeyOnDemand, which `rotate` calls) and keeps every older material for the key's life, so nothing
ever needs retiring and old blobs always decrypt. Re-wrapping is then ReEncrypt to the same key, done by
KMS without the plaintext leaving it: it moves every data key onto the newest material (a cryptoperiod
rule). After an automatic rotation, `rotate=False` re-encrypts onto it without rotating again.

What this does not rotate: the per-customer data keys themselves (re-encrypting every field) and the token
HMAC key. Re-keying tokens changes every `usr_`/`crd_` token and `txn_id`: every lake partition, the
stream's retained records, the online state, the idempotency indexes, the feature tables and the training
snapshots referenced by registered models would have to be rewritten together, and the lineage of every
model would break. Its wrapping is rotated like any other entry's.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cdp.security.audit.port import AuditLog
from cdp.security.datakeys.port import DataKeyStore, StoredKey
from cdp.security.errors import KeyAccessError, SecurityError
from cdp.security.keycontexts import entry_context
from cdp.security.keys.port import KeyManager

ROTATE_ACTION = "rotate-master-key"
NO_CUSTOMER = "-"
_SWAP_ATTEMPTS = 3


class RotationIncomplete(SecurityError):
    """Old master versions cannot be retired while live entries are still wrapped under them."""


@dataclass
class RotationReport:
    """What one run did. `remaining` counts live entries not under `target` after the run."""

    previous: str
    target: str
    resumed: bool
    entries: int = 0
    rewrapped: int = 0
    already_current: int = 0
    unknown_context: int = 0
    unreadable: int = 0
    erased_meanwhile: int = 0
    remaining: int = 0
    retired: tuple[str, ...] = ()
    problem_ids: list[str] = field(default_factory=list)  # ids only (tokens, never PII), first 20

    @property
    def complete(self) -> bool:
        return self.remaining == 0

    def counts(self) -> dict[str, int | str | bool | list[str]]:
        out = asdict(self)
        out["retired"] = list(self.retired)
        out["complete"] = self.complete
        return out


def rotate_master_key(
    keys: KeyManager,
    store: DataKeyStore,
    audit: AuditLog,
    journal: Path,
    *,
    actor: str,
    role: str,
    rotate: bool = True,
    retire_old: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> RotationReport:
    """Rotate the master key (or resume the rotation in progress) and re-wrap every live data key.

    `rotate=False` only re-wraps entries not yet under the current version. `retire_old` then deletes the
    master versions no live entry names, or raises `RotationIncomplete` if any entry is still behind.
    One audit record per run, with the counts; the same record (outcome `failed`) if the run fails."""
    previous = keys.current_version
    pending = _read_journal(journal)
    resumed = pending is not None and pending.get("target") == previous
    if resumed:
        target = previous
        previous = pending.get("previous", previous)
    elif rotate:
        target = keys.rotate()
        _write_journal(journal, previous=previous, target=target, status="in-progress")
    else:
        target = previous
    report = RotationReport(previous=previous, target=target, resumed=resumed)
    try:
        _rewrap_all(keys, store, target, report, progress)
        behind = [e for e in store.entries() if e.key_version != target]
        report.remaining = len(behind)
        for e in behind:
            _note(report, e.entry_id)
        if report.complete and (resumed or rotate):
            _write_journal(journal, previous=previous, target=target, status="done")
        if retire_old:
            if not report.complete:
                raise RotationIncomplete(
                    f"{report.remaining} live data keys are still wrapped under older master versions "
                    f"(e.g. {', '.join(report.problem_ids[:3])}); nothing retired"
                )
            report.retired = keys.retire({target})
    except Exception as error:
        audit.append(
            actor=actor, role=role, action=ROTATE_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="failed", details={**_audit_counts(report), "error": type(error).__name__},
        )  # fmt: skip
        raise
    audit.append(
        actor=actor, role=role, action=ROTATE_ACTION, customer_token=NO_CUSTOMER, fields=[],
        outcome="allowed" if report.complete else "failed", details=_audit_counts(report),
    )  # fmt: skip
    return report


def _rewrap_all(
    keys: KeyManager,
    store: DataKeyStore,
    target: str,
    report: RotationReport,
    progress: Callable[[int, int], None] | None,
) -> None:
    entries = list(store.entries())
    report.entries = len(entries)
    for done, entry in enumerate(entries, 1):
        _rewrap_one(keys, store, entry, target, report)
        if progress is not None:
            progress(done, len(entries))


def _rewrap_one(
    keys: KeyManager, store: DataKeyStore, entry: StoredKey, target: str, report: RotationReport
) -> None:
    for _ in range(_SWAP_ATTEMPTS):
        if entry.key_version == target and entry.context is not None:
            report.already_current += 1
            return
        context = entry_context(entry)
        if context is None:
            report.unknown_context += 1
            _note(report, entry.entry_id)
            return
        try:
            wrapped, version = keys.rewrap(entry.wrapped, context)
        except KeyAccessError:
            report.unreadable += 1
            _note(report, entry.entry_id)
            return
        if store.swap(entry.entry_id, entry.wrapped, wrapped, version, context):
            report.rewrapped += 1
            return
        fresh = store.entry(entry.entry_id)  # changed meanwhile (erased, or re-wrapped by another run)
        if fresh is None:
            report.erased_meanwhile += 1
            return
        entry = fresh
    report.unreadable += 1  # kept changing under us: left as is, counted as not done
    _note(report, entry.entry_id)


def _note(report: RotationReport, entry_id: str) -> None:
    if len(report.problem_ids) < 20 and entry_id not in report.problem_ids:
        report.problem_ids.append(entry_id)


def _audit_counts(report: RotationReport) -> dict[str, object]:
    counts = report.counts()
    counts.pop("problem_ids")
    counts["retired"] = ",".join(report.retired)  # audit details are flat scalars
    return counts


def _read_journal(path: Path) -> dict[str, str] | None:
    """The rotation in progress, if the last run did not finish."""
    try:
        doc = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return doc if doc.get("status") == "in-progress" else None


def _write_journal(path: Path, *, previous: str, target: str, status: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "previous": previous,
        "target": target,
        "status": status,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
