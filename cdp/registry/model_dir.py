"""The model folder convention: an XGBoost booster saved as `model.ubj` (or `model.json`), nothing pickled.

Training writes a folder with the booster and, optionally, other plain files (e.g. a threshold file);
the registry stores the folder as it is and scoring loads the booster from it.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from cdp.registry.port import InvalidRegistrationError

BOOSTER_FILES = ("model.ubj", "model.json")


def booster_file(model_dir: Path) -> Path:
    """The booster file of a model folder; `InvalidRegistrationError` if it has none."""
    if not model_dir.is_dir():
        raise InvalidRegistrationError("model folder not found")
    for name in BOOSTER_FILES:
        candidate = model_dir / name
        if candidate.is_file():
            return candidate
    raise InvalidRegistrationError(f"model folder holds no booster ({' or '.join(BOOSTER_FILES)})")


def model_files(model_dir: Path) -> list[Path]:
    """Every regular file of the folder (recursively, symlinks skipped), in a stable order."""
    return sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink())


def pack(model_dir: Path) -> bytes:
    """The folder as a gzipped tar with paths relative to it (SageMaker's `model.tar.gz` layout)."""
    booster_file(model_dir)
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
    booster_file(destination)
    return destination
