"""Writing, verifying and restoring a backup archive of a home (`components`), sealed by `sealed`.

Inside the seal is a tar stream: `manifest.json` first (every file with its size and SHA-256, by
component), then the files under their paths relative to CDP_HOME. A restore reads the archive twice:
once to authenticate every chunk and check every file against the manifest (nothing is written), then to
unpack into a staging folder inside the home, check each SQLite file, and only then move the files into
place. Files a forced restore replaces are moved aside, never deleted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from cdp.backup import components
from cdp.backup.errors import ArchiveIntegrityError, HomeNotEmpty
from cdp.backup.recovery_key import RecoveryKey
from cdp.backup.sealed import SealedReader, SealedWriter

MANIFEST = "manifest.json"
_READ = 1 << 20


@dataclass(frozen=True)
class Manifest:
    backup_id: str
    created: str
    home: str
    components: dict[str, list[str]]
    files: dict[str, dict[str, Any]]  # relative path -> {"size": int, "sha256": hex}

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True, indent=1).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Manifest:
        try:
            doc = json.loads(raw)
            files = {
                str(k): {"size": int(v["size"]), "sha256": str(v["sha256"])} for k, v in doc["files"].items()
            }
            manifest = cls(
                str(doc["backup_id"]), str(doc["created"]), str(doc["home"]),
                {str(k): [str(p) for p in v] for k, v in doc["components"].items()}, files,
            )  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ArchiveIntegrityError("the archive's manifest is malformed") from None
        for rel in manifest.files:
            if not _safe(rel) or components.kind_of(rel) is None:
                raise ArchiveIntegrityError("the archive names a path outside the backed-up state")
        return manifest

    @property
    def bytes(self) -> int:
        return sum(f["size"] for f in self.files.values())


@dataclass(frozen=True)
class BackupReport:
    backup_id: str
    created: str
    recovery_key_id: str
    path: Path
    components: dict[str, int]  # files per component
    bytes: int  # of state, before compression
    archive_sha256: str


@dataclass(frozen=True)
class RestoreReport:
    backup_id: str
    created: str
    recovery_key_id: str
    components: dict[str, int]
    files: int
    replaced_to: Path | None  # where the files a forced restore replaced were moved
    home_moved: bool = False  # the archive was made from a home at another path
    problems: list[str] = field(default_factory=list)


def _safe(rel: str) -> bool:
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "" not in rel.split("/")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_READ):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class _Staging:
    """A private folder inside the home, removed on exit whatever happens."""

    path: Path

    def __enter__(self) -> Path:
        self.path.mkdir(mode=0o700)
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def write_backup(home: Path, out: Path, recovery: RecoveryKey) -> BackupReport:
    """Snapshot `home`'s state and seal it into the new file `out` (mode 0600)."""
    backup_id = uuid.uuid4().hex
    created = datetime.now(UTC).isoformat(timespec="seconds")
    out = out.expanduser().resolve()
    with _Staging(home / f".backup-{backup_id}") as staging:
        copied = components.snapshot(home, staging)
        files = {
            rel: {"size": (staging / rel).stat().st_size, "sha256": _sha256(staging / rel)}
            for paths in copied.values()
            for rel in paths
        }
        manifest = Manifest(backup_id, created, str(home), copied, files)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{backup_id}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                sealed = SealedWriter(raw, recovery, backup_id, created)
                with tarfile.open(fileobj=sealed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                    _add_bytes(tar, MANIFEST, manifest.to_bytes())
                    for rel in files:
                        _add_file(tar, rel, staging / rel)
                sealed.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return BackupReport(
        backup_id, created, recovery.key_id, out, {k: len(v) for k, v in copied.items()},
        manifest.bytes, _sha256(out),
    )  # fmt: skip


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o600, 0
    tar.addfile(info, io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, rel: str, path: Path) -> None:
    info = tarfile.TarInfo(rel)
    info.size, info.mode, info.mtime = path.stat().st_size, 0o600, 0
    with open(path, "rb") as f:
        tar.addfile(info, f)


def _members(
    source: IO[bytes], recovery: RecoveryKey
) -> Iterator[tuple[SealedReader, Manifest | None, str, IO[bytes]]]:
    """(reader, manifest, name, content) per tar member, the manifest first; every chunk authenticated."""
    reader = SealedReader(source, recovery)
    manifest: Manifest | None = None
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                if not member.isfile():
                    raise ArchiveIntegrityError("the archive holds something other than files")
                content = tar.extractfile(member)
                assert content is not None
                if manifest is None:
                    if member.name != MANIFEST:
                        raise ArchiveIntegrityError("the archive does not start with its manifest")
                    manifest = Manifest.from_bytes(content.read())
                    continue
                yield reader, manifest, member.name, content
    except tarfile.TarError:
        raise ArchiveIntegrityError("the archive's contents are not a valid file list") from None
    reader.drain()  # authenticate to the final chunk: nothing cut off, nothing appended
    if manifest is None:
        raise ArchiveIntegrityError("the archive has no manifest")
    yield reader, manifest, "", io.BytesIO()


def _checked_copy(content: IO[bytes], expected: dict[str, Any], sink: IO[bytes] | None) -> None:
    h, size = hashlib.sha256(), 0
    while chunk := content.read(_READ):
        h.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    if size != expected["size"] or h.hexdigest() != expected["sha256"]:
        raise ArchiveIntegrityError("a file in the archive does not match its manifest entry")


def _walk(archive: Path, recovery: RecoveryKey, staging: Path | None) -> tuple[str, str, Manifest]:
    """Authenticate the whole archive and check each file against the manifest; with `staging`, also
    write the files there. (recovery key id, backup id, manifest)."""
    seen: set[str] = set()
    with open(archive, "rb") as source:
        for reader, manifest, name, content in _members(source, recovery):
            assert manifest is not None
            if not name:  # the end: everything read and authenticated
                missing = set(manifest.files) - seen
                if missing:
                    raise ArchiveIntegrityError(f"the archive lacks {len(missing)} files its manifest lists")
                if reader.header.backup_id != manifest.backup_id:
                    raise ArchiveIntegrityError("the archive's header and manifest disagree")
                return reader.header.recovery_key_id, reader.header.created, manifest
            if name in seen or name not in manifest.files:
                raise ArchiveIntegrityError("the archive holds a file its manifest does not list")
            seen.add(name)
            if staging is None:
                _checked_copy(content, manifest.files[name], None)
                continue
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as sink:
                _checked_copy(content, manifest.files[name], sink)
    raise ArchiveIntegrityError("the archive ended early")  # pragma: no cover - _members always ends


def verify_archive(archive: Path, recovery: RecoveryKey) -> Manifest:
    """Authenticate every byte of `archive` and check every file against its manifest; writes nothing."""
    return _walk(archive, recovery, None)[2]


def restore_archive(archive: Path, home: Path, recovery: RecoveryKey, *, force: bool) -> RestoreReport:
    """Restore `archive` into `home`: verified first (nothing written), refused over existing state
    unless `force` (what it replaces is moved to `<home>/restore-replaced/<time>/`)."""
    key_id, created, manifest = _walk(archive, recovery, None)
    existing = components.present(home)
    if existing and not force:
        raise HomeNotEmpty(
            f"CDP_HOME already holds platform state ({', '.join(existing[:4])}"
            f"{', ...' if len(existing) > 4 else ''}); restore with --force to replace it"
        )
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _Staging(home / f".restore-{manifest.backup_id}") as staging:
        _walk(archive, recovery, staging)  # the same checks again, now writing into the staging folder
        problems = [
            f"{rel}: {problem}"
            for rel in manifest.files
            if components.kind_of(rel) is components.Kind.SQLITE
            and (problem := components.integrity_problem(staging / rel))
        ]
        if problems:
            raise ArchiveIntegrityError(f"restored database fails its check: {problems[0]}")
        replaced = _move_aside(home, [e.path for e in components.entries()])
        for entry in {components.top_entry(rel) for rel in manifest.files}:
            target = home / entry
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.replace(staging / entry, target)
    return RestoreReport(
        manifest.backup_id, created, key_id, {k: len(v) for k, v in manifest.components.items()},
        len(manifest.files), replaced, home_moved=manifest.home != str(home),
    )  # fmt: skip


def _move_aside(home: Path, entries: list[str]) -> Path | None:
    """Move what a restore replaces (the entries, and SQLite sidecar files even when left alone by a
    deleted database: a stale WAL must not meet a restored file) to a dated folder; None if nothing."""
    aside = home / "restore-replaced" / datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    moved = False
    for rel in entries:
        for suffix in ("", *components.SQLITE_SIDECARS):
            source = home / (rel + suffix)
            if source.exists():
                (aside / rel).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.replace(source, aside / (rel + suffix))
                moved = True
    return aside if moved else None
