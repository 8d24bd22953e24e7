"""Where a model to register comes from: a model folder (either flavour) or a `model.tar.gz` of one,
local or `s3://`.

`s3://.../model.tar.gz` is what SageMaker training writes (and a pipeline's `ModelDataUrl` names); an
`s3://` prefix without that suffix is read as a folder of model files.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cdp.objectstore.port import SCHEME, ObjectStore
from cdp.registry.model_dir import model_flavour, unpack
from cdp.registry.port import InvalidRegistrationError

ARCHIVE_SUFFIX = ".tar.gz"


@contextmanager
def local_model_dir(artifacts_uri: str | Path, object_store: ObjectStore | None) -> Iterator[Path]:
    """A local folder with the model's files (a temporary one unless given a local folder)."""
    remote = isinstance(artifacts_uri, str) and artifacts_uri.startswith(SCHEME)
    if not remote:
        path = Path(artifacts_uri)
        if path.name.endswith(ARCHIVE_SUFFIX):
            if not path.is_file():
                raise InvalidRegistrationError("model archive not found")
            with tempfile.TemporaryDirectory(prefix="cdp-model-") as tmp:
                yield unpack(path.read_bytes(), Path(tmp))
            return
        model_flavour(path)
        yield path
        return
    if object_store is None:
        raise InvalidRegistrationError("registering from an s3:// location needs an object store")
    uri = str(artifacts_uri)
    with tempfile.TemporaryDirectory(prefix="cdp-model-") as tmp:
        root = Path(tmp)
        if uri.endswith(ARCHIVE_SUFFIX):
            if not object_store.exists(uri):
                raise InvalidRegistrationError("no model archive at the given s3:// URI")
            yield unpack(object_store.get_bytes(uri), root)
            return
        prefix = uri.rstrip("/") + "/"
        found = False
        for info in object_store.list(prefix):
            object_store.get_file(info.uri, root / info.uri[len(prefix) :])
            found = True
        if not found:
            raise InvalidRegistrationError("no model files under the given s3:// prefix")
        model_flavour(root)
        yield root
