"""The model folder convention: plain files, nothing pickled. A folder holds one of two model flavours:

- an XGBoost booster saved as `model.ubj` (or `model.json`), optionally with `regression.json` describing
  a regression's output transform (see `cdp.registry.scoring`);
- a centroid model: `model.json` whose `"kind"` is `"centroid_model"` (scaler + centroids + named segments,
  see `cdp.registry.centroid`).
Other plain files (e.g. a threshold file) are kept alongside; the registry stores the folder as it is.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from cdp.registry.port import InvalidRegistrationError

BOOSTER_FILES = ("model.ubj", "model.json")
CENTROID_FILE = "model.json"
CENTROID_KIND = "centroid_model"
BOOSTER_FLAVOUR = "xgboost"
CENTROID_FLAVOUR = "centroid"


def centroid_document(model_dir: Path) -> dict | None:
    """The folder's `model.json` when it is a centroid model (its `kind` says so), else None."""
    path = model_dir / CENTROID_FILE
    if not path.is_file():
        return None
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        if b'"kind"' not in head and b'"learner"' in head:
            return None  # an XGBoost JSON booster: no need to parse it all
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("kind") == CENTROID_KIND else None


def model_flavour(model_dir: Path) -> str:
    """`"centroid"` or `"xgboost"`; `InvalidRegistrationError` if the folder holds neither."""
    if not model_dir.is_dir():
        raise InvalidRegistrationError("model folder not found")
    if centroid_document(model_dir) is not None:
        return CENTROID_FLAVOUR
    booster_file(model_dir)
    return BOOSTER_FLAVOUR


def booster_file(model_dir: Path) -> Path:
    """The booster file of a model folder; `InvalidRegistrationError` if it has none."""
    if not model_dir.is_dir():
        raise InvalidRegistrationError("model folder not found")
    for name in BOOSTER_FILES:
        candidate = model_dir / name
        if candidate.is_file() and not (name == CENTROID_FILE and centroid_document(model_dir) is not None):
            return candidate
    raise InvalidRegistrationError(
        f"model folder holds no booster ({' or '.join(BOOSTER_FILES)}) and no {CENTROID_KIND} {CENTROID_FILE}"
    )


def model_files(model_dir: Path) -> list[Path]:
    """Every regular file of the folder (recursively, symlinks skipped), in a stable order."""
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink())


def pack(model_dir: Path) -> bytes:
    """The folder as a gzipped tar with paths relative to it (SageMaker's `model.tar.gz` layout)."""
    model_flavour(model_dir)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in model_files(model_dir):
            tar.add(path, arcname=path.relative_to(model_dir).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack(data: bytes, destination: Path) -> Path:
    """Extract a packed model folder into `destination` (only regular files; no links, no escaping)."""
    destination.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(destination, filter="data")
    model_flavour(destination)
    return destination
