"""Private files: everything the platform writes under CDP_HOME is readable by its owner only.

CDP_HOME holds keys (keyring, data-key store), PII (source CSVs with PANs and CVVs, core banking, exports,
quarantine), credentials (API-key hashes) and the audit log, so the mechanism is global rather than per
file: `make_private` sets the process umask to 0o077 (files 0600, folders 0700, inherited by worker
processes and honoured by SQLite, DuckDB, Arrow and MLflow), makes CDP_HOME and its direct folders 0700,
and once per home removes group/other access from what an older version left there (files this user owns
only; the keyring is left alone so that a readable one is still refused and reported by its loader).
Entry points call it first: the CLI's `main()` and `Backends` (the serving app, stream handler and jobs).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cdp.settings import Settings

PRIVATE_UMASK = 0o077
_MARKER = ".private-modes"  # present once a home's older files were tightened
_LEFT_TO_ITS_LOADER = frozenset({"keyring.json"})  # refused, not silently fixed, when readable by others
_done: set[Path] = set()


def make_private(settings: Settings) -> None:
    """Umask 0o077 for this process, CDP_HOME and its direct folders 0700, older files tightened once."""
    os.umask(PRIVATE_UMASK)
    home = settings.home
    if home in _done or _shared_folder(home):
        return
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(home, folder=True)
    for child in home.iterdir():
        if child.is_dir() and not child.is_symlink():
            _tighten(child, folder=True)
    marker = home / _MARKER
    if not marker.exists():
        tighten_tree(home)
        marker.touch(mode=0o600)
    _done.add(home)


def _shared_folder(home: Path) -> bool:
    """A CDP_HOME that is also the user's home or working folder (or holds it): only the umask applies."""
    cwd = Path.cwd().resolve()
    return home == Path(home.anchor) or home == Path.home().resolve() or cwd == home or home in cwd.parents


def tighten_tree(root: Path) -> int:
    """Remove group/other permissions from every file and folder under `root` this user owns.

    Never adds a permission, never follows symlinks; returns how many entries changed."""
    changed = 0
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        for name in dirs:
            changed += _tighten(base / name, folder=True)
        for name in files:
            if name not in _LEFT_TO_ITS_LOADER:
                changed += _tighten(base / name, folder=False)
    return changed


def _tighten(path: Path, *, folder: bool) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:  # removed by another process meanwhile
        return 0
    if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid():
        return 0
    mode = stat.S_IMODE(st.st_mode)
    want = 0o700 if folder else mode & 0o700
    if want == mode:
        return 0
    try:
        os.chmod(path, want)
    except FileNotFoundError:
        return 0
    return 1
