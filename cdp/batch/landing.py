"""The batch job in AWS: fetch the IBM files that arrived under a landing prefix, then run the batch path.

`python -m cdp.batch.landing s3://<bucket>/landing/<drop>/` (the Batch job's command; the drop's
`_READY` marker, whose arrival starts the job, names the same drop): every object directly under the
prefix but the marker is copied into a private scratch folder (mode 0700, removed afterwards), and `run_batch`
reads them there as it reads a local folder. Object keys are checked by the object store (no `..`, no
absolute paths); only file names are kept.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path, PurePosixPath

from cdp.objectstore.port import ObjectStore

READY_MARKER = "_READY"  # written last into a drop: its arrival starts the batch job


def fetch_landing(store: ObjectStore, prefix_uri: str, folder: Path) -> list[Path]:
    """Copy the objects directly under `prefix_uri` into `folder`; the local paths, sorted."""
    if prefix_uri.endswith("/" + READY_MARKER):
        prefix_uri = prefix_uri[: -len(READY_MARKER)]
    prefix = prefix_uri if prefix_uri.endswith("/") else prefix_uri + "/"
    fetched = []
    for info in store.list(prefix):
        name = info.uri[len(prefix) :]
        if not name or "/" in name or name == READY_MARKER:
            continue  # only the drop's own files, not sub-folders
        target = folder / PurePosixPath(name).name
        store.get_file(info.uri, target)
        fetched.append(target)
    if not fetched:
        raise FileNotFoundError(f"no files under {prefix}")
    return sorted(fetched)


def main(argv: list[str] | None = None) -> int:
    """Fetch the drop named on the command line and run the batch path over it."""
    from cdp.backends import Backends
    from cdp.batch.job import run_batch

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].startswith("s3://"):
        print("usage: python -m cdp.batch.landing s3://<bucket>/<landing prefix>/", file=sys.stderr)
        return 2
    backends = Backends()
    with tempfile.TemporaryDirectory(prefix="landing-") as scratch:
        fetched = fetch_landing(backends.object_store, args[0], Path(scratch))
        print(f"fetched {len(fetched)} files")
        run_batch(Path(scratch), backends)
    return 0


if __name__ == "__main__":
    sys.exit(main())
