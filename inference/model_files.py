"""A registered model version's files as a local folder, whatever registry stored them.

- MLflow (local registry): `artifacts_uri` is a `file://` pyfunc folder; its `MLmodel` names the data
  sub-folder that holds the model folder as it was registered;
- SageMaker registry: `s3://.../model.tar.gz`, fetched through the object store and unpacked;
- a plain local model folder (or `.tar.gz`) is used as it is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from cdp.objectstore.port import SCHEME, ObjectStore
from cdp.registry.model_dir import model_flavour, unpack
from cdp.registry.port import ModelVersion

MLMODEL = "MLmodel"


def _pyfunc_data_dir(folder: Path) -> Path:
    doc = yaml.safe_load((folder / MLMODEL).read_text(encoding="utf-8")) or {}
    data = (doc.get("flavors", {}).get("python_function", {}) or {}).get("data")
    if not data:
        raise FileNotFoundError("the MLflow model names no data folder")
    return folder / data


def model_folder(
    version: ModelVersion, object_store: ObjectStore | None, scratch: Path | None = None
) -> Path:
    """A local folder holding the version's model files (`model.ubj`/`model.json`, `features.json`, ...).

    Remote archives are unpacked under `scratch` (a new temporary folder when None); the caller may
    delete it once the model is loaded.
    """
    uri = version.artifacts_uri
    if uri.startswith(SCHEME):
        if object_store is None:
            raise FileNotFoundError("an s3:// model needs an object store")
        target = Path(tempfile.mkdtemp(prefix="cdp-serve-", dir=scratch))
        return unpack(object_store.get_bytes(uri), target / "model")
    path = Path(unquote(urlparse(uri).path)) if uri.startswith("file:") else Path(uri)
    if path.name.endswith(".tar.gz"):
        target = Path(tempfile.mkdtemp(prefix="cdp-serve-", dir=scratch))
        return unpack(path.read_bytes(), target / "model")
    if (path / MLMODEL).is_file():
        path = _pyfunc_data_dir(path)
    model_flavour(path)
    return path
