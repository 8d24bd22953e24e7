"""Moving step data between the object store (S3 URIs) and a step's local container folders."""

from __future__ import annotations

import hashlib
from pathlib import Path

from cdp.objectstore.port import ObjectStore
from pipelines.local.errors import StepFailedError


def download_prefix(store: ObjectStore, uri: str, destination: Path, where: str) -> int:
    """Copy the object at `uri`, or every object under the folder `uri/`, into `destination`.

    Like SageMaker's `S3Prefix` inputs: an object lands as `destination/<basename>`, objects under the
    prefix keep their path below it. Returns the number of objects; none is an error.
    """
    destination.mkdir(parents=True, exist_ok=True)
    if store.exists(uri):
        store.get_file(uri, destination / uri.rstrip("/").rsplit("/", 1)[-1])
        return 1
    folder = uri.rstrip("/") + "/"
    count = 0
    for info in store.list(folder):
        relative = info.uri[len(folder) :]
        store.get_file(info.uri, destination / relative)
        count += 1
    if count == 0:
        raise StepFailedError(f"{where}: no objects at {uri}")
    return count


def upload_folder(store: ObjectStore, source: Path, uri: str) -> list[str]:
    """Put every file under `source` at `uri/<relative path>`; returns the URIs written."""
    written = []
    base = uri.rstrip("/")
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        target = f"{base}/{path.relative_to(source).as_posix()}"
        store.put_file(target, path)
        written.append(target)
    return written


def folder_digest(folder: Path) -> str:
    """sha256 over the relative paths and contents of every file under `folder`."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()
