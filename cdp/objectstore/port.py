"""The object-store port: S3 semantics over `s3://bucket/key` URIs.

Adapters: `FolderObjectStore` (local folder) and `S3ObjectStore` (AWS). Every put is all-or-nothing:
a reader sees the old object or the new one, never a partial write. `list` follows S3 prefix rules
(a plain string prefix of the key, not a folder) and yields objects in key order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

SCHEME = "s3://"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One stored object. `etag` changes whenever the content is rewritten."""

    uri: str
    size: int
    etag: str
    last_modified: datetime


class ObjectStoreError(Exception):
    """Base class of the object-store port's errors."""


class InvalidUriError(ObjectStoreError, ValueError):
    """The URI is not `s3://bucket/key`, or its key is unsafe (`..`, absolute, empty segments)."""


class ObjectNotFoundError(ObjectStoreError, FileNotFoundError):
    """No object at that URI."""


@runtime_checkable
class ObjectStore(Protocol):
    """Store and fetch whole objects by `s3://bucket/key` URI."""

    def put_bytes(self, uri: str, data: bytes) -> None:
        """Write `data` as the object at `uri`, atomically (replacing any previous object)."""
        ...

    def get_bytes(self, uri: str) -> bytes:
        """The object's content; `ObjectNotFoundError` if missing."""
        ...

    def put_file(self, uri: str, path: Path | str) -> None:
        """Upload the local file at `path` as the object at `uri`, atomically."""
        ...

    def get_file(self, uri: str, path: Path | str) -> None:
        """Download the object to `path` (parents created; the file appears whole or not at all)."""
        ...

    def exists(self, uri: str) -> bool: ...

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        """Objects whose key starts with the prefix (`s3://bucket/` or `s3://bucket/some/prefix`)."""
        ...

    def delete(self, uri: str) -> None:
        """Remove the object; deleting a missing object is not an error (as in S3)."""
        ...

    def local_path(self, uri: str) -> Path | None:
        """A real file-system path for the object or prefix when the store is local, else None."""
        ...


def split_uri(uri: str, *, allow_empty_key: bool = False) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key), rejecting unsafe keys. Messages name the problem, not the URI."""
    if not isinstance(uri, str) or not uri.startswith(SCHEME):
        raise InvalidUriError("object URI must start with s3://")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidUriError("bucket name must be 3-63 lowercase letters, digits, dots or hyphens")
    if not key:
        if allow_empty_key:
            return bucket, ""
        raise InvalidUriError("object URI needs a key after the bucket")
    validate_key(key, allow_trailing_slash=allow_empty_key)
    return bucket, key


def validate_key(key: str, *, allow_trailing_slash: bool = False) -> None:
    """Reject keys that could escape the bucket or have no safe file-system form."""
    if key.startswith("/") or key.startswith("\\"):
        raise InvalidUriError("object key must not be absolute")
    if "\x00" in key or "\\" in key:
        raise InvalidUriError("object key must not contain NUL or backslash characters")
    if len(key.encode("utf-8")) > 1024:
        raise InvalidUriError("object key is longer than 1024 bytes")
    segments = key.split("/")
    if allow_trailing_slash and segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidUriError("object key must not contain empty, '.' or '..' segments")


def join_uri(bucket: str, key: str) -> str:
    """The `s3://bucket/key` URI of a bucket and key."""
    return f"{SCHEME}{bucket}/{key}"
