"""What reproduces a run: the code's git commit (when it runs from a checkout), the dependency lock's hash
and the data snapshot's hash (given by the caller, who knows which lake objects it read)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = "requirements.lock"


def git_commit(root: Path = PROJECT_ROOT) -> str | None:
    """The checkout's HEAD commit, with `+dirty` when tracked files changed; None outside a checkout."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if head and changed else head or None


def lock_hash(root: Path = PROJECT_ROOT) -> str | None:
    """sha256 of `requirements.lock` (the exact dependency set), None when it is not there."""
    path = root / LOCK_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def reproducibility_tags(data_snapshot_hash: str | None) -> dict[str, str]:
    """The tags every tracked training run carries (`cdp.git_commit`, `cdp.requirements_lock_sha256`,
    `cdp.data_snapshot_sha256`); an unknown one is `unknown`."""
    return {
        "cdp.git_commit": git_commit() or "unknown",
        "cdp.requirements_lock_sha256": lock_hash() or "unknown",
        "cdp.data_snapshot_sha256": (data_snapshot_hash or "unknown").removeprefix("sha256:"),
    }
