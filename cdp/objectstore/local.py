"""Local adapter of the object-store port: `s3://bucket/key` is the file `<root>/bucket/key`.

Puts write a temporary file in the destination folder, flush it to disk and `os.replace` it over the
target, so readers (DuckDB, pyarrow, other processes) see the old object or the new one, never a torn
file. Buckets are folders created on first write. Temporary names start with `.cdp-tmp-`; keys whose
segments start with that prefix are reserved and rejected.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cdp.objectstore.port import (
    InvalidUriError,
    ObjectInfo,
    ObjectNotFoundError,
    join_uri,
    split_uri,
)

if TYPE_CHECKING:
    from cdp.settings import Settings

TEMP_PREFIX = ".cdp-tmp-"


class FolderObjectStore:
    """Objects as files under `root` (one folder per bucket)."""

    def __init__(self, root: Path | str, *, fsync: bool = True) -> None:
        self.root = Path(root).resolve()
        self.fsync = fsync

    @classmethod
    def from_settings(cls, settings: Settings) -> FolderObjectStore:
        """The lake's store: `s3://<lake_bucket>/key` maps to `<lake_dir>/<lake_bucket>/key`."""
        return cls(settings.lake_dir)

    # -- paths -------------------------------------------------------------------------------------
    def _path(self, uri: str, *, prefix: bool = False) -> tuple[str, str, Path]:
        bucket, key = split_uri(uri, allow_empty_key=prefix)
        if any(segment.startswith(TEMP_PREFIX) for segment in key.split("/")):
            raise InvalidUriError(f"object key segments must not start with {TEMP_PREFIX!r}")
        path = self.root / bucket / key
        # Defence in depth: the key was validated, but a symlink inside root must not lead outside it.
        if not path.resolve().is_relative_to(self.root):
            raise InvalidUriError("object key resolves outside the store root")
        return bucket, key, path

    def local_path(self, uri: str) -> Path | None:
        return self._path(uri, prefix=True)[2]

    # -- writes ------------------------------------------------------------------------------------
    def _atomic_write(self, target: Path, write: Callable[[BinaryIO], object]) -> None:
        if target.is_dir():
            raise InvalidUriError(
                "object key names an existing prefix (folder); the local store cannot hold both"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise InvalidUriError(
                "a leading part of this key is an existing object; the local store cannot hold both"
            ) from None
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                if self.fsync:
                    os.fsync(handle.fileno())
            os.chmod(temp_name, 0o600)  # lake objects hold protected customer data: owner only
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, uri: str, data: bytes) -> None:
        self._atomic_write(self._path(uri)[2], lambda handle: handle.write(data))

    def put_file(self, uri: str, path: Path | str) -> None:
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no file to upload at {source.name!r}")
        with source.open("rb") as reader:
            self._atomic_write(self._path(uri)[2], lambda handle: shutil.copyfileobj(reader, handle, 1 << 20))

    # -- reads -------------------------------------------------------------------------------------
    def _existing(self, uri: str) -> Path:
        path = self._path(uri)[2]
        if not path.is_file():
            raise ObjectNotFoundError(f"no object at {uri}")
        return path

    def get_bytes(self, uri: str) -> bytes:
        try:
            return self._existing(uri).read_bytes()
        except FileNotFoundError as error:  # deleted between the check and the read
            raise ObjectNotFoundError(f"no object at {uri}") from error

    def get_file(self, uri: str, path: Path | str) -> None:
        source = self._existing(uri)
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=destination.parent)
        try:
            with os.fdopen(fd, "wb") as handle, source.open("rb") as reader:
                shutil.copyfileobj(reader, handle, 1 << 20)
            os.replace(temp_name, destination)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def exists(self, uri: str) -> bool:
        return self._path(uri)[2].is_file()

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        bucket, prefix, _ = self._path(prefix_uri, prefix=True)
        bucket_dir = self.root / bucket
        folder = prefix.rpartition("/")[0]
        start = bucket_dir / folder if folder else bucket_dir
        if not start.is_dir():
            return
        found: list[tuple[str, os.stat_result]] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            relative = Path(dirpath).relative_to(bucket_dir).as_posix()
            base = "" if relative == "." else relative + "/"
            for name in filenames:
                key = base + name
                if name.startswith(TEMP_PREFIX) or not key.startswith(prefix):
                    continue
                try:
                    found.append((key, os.stat(os.path.join(dirpath, name))))
                except FileNotFoundError:
                    continue  # deleted while listing
        found.sort(key=lambda item: item[0].encode("utf-8"))
        for key, stat in found:
            yield ObjectInfo(
                uri=join_uri(bucket, key),
                size=stat.st_size,
                etag=f'"{stat.st_mtime_ns:x}-{stat.st_size:x}-{stat.st_ino:x}"',
                last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
            )

    def delete(self, uri: str) -> None:
        _, _, path = self._path(uri)
        if path.is_dir():
            return  # a prefix, not an object: S3 has nothing to delete there either
        path.unlink(missing_ok=True)
        self._prune_empty_folders(path.parent, self.root / split_uri(uri)[0])

    @staticmethod
    def _prune_empty_folders(folder: Path, bucket_dir: Path) -> None:
        """Remove folders emptied by a delete (S3 has no folders), up to the bucket folder."""
        while folder != bucket_dir and folder.is_relative_to(bucket_dir):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent
