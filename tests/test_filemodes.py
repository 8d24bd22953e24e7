"""Everything the platform writes under CDP_HOME is private to its owner (files 0600, folders 0700)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cdp.filemodes import make_private, tighten_tree
from cdp.settings import Settings


def _cli(home: Path, *args: str, identity: Path | None = None) -> None:
    env = {**os.environ, "CDP_HOME": str(home), "CDP_WORKERS": "1"}
    if identity is not None:
        env["CDP_IDENTITY_FILE"] = str(identity)
    done = subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _exposed(home: Path) -> list[str]:
    """Entries under `home` that group or others can read, write or enter."""
    found = []
    for path in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        if (path.is_dir() and mode != 0o700) or (not path.is_dir() and mode & 0o077):
            found.append(f"{path.relative_to(home)} {mode:04o}")
    return found


@pytest.mark.slow
def test_a_platform_run_leaves_only_private_files(tmp_path):
    home = tmp_path / "home"
    old = os.umask(0o022)  # the usual default: files 0644, folders 0755
    try:
        _cli(home, "generate", "--users", "3", "--start", "2018-06-01", "--workers", "1")
        _cli(home, "load")
        _cli(home, "batch")
        _cli(home, "stream", "produce")
        _cli(home, "stream", "consume")
        admin, dpo = home / "identities" / "root.token", home / "identities" / "dpo.token"
        _cli(home, "identity", "create", "root", "--role", "admin", "--out", str(admin))
        _cli(
            home, "identity", "create", "dpo", "--role", "privacy-officer", "--out", str(dpo), identity=admin
        )
        _cli(home, "keys", "create", "partner", "--scope", "fraud:score", identity=admin)
        _cli(home, "export", "--user", "0", identity=dpo)
        _cli(home, "crypto", "rotate-master-key", identity=admin)
    finally:
        os.umask(old)
    written = {p.relative_to(home).parts[0] for p in home.rglob("*")}
    assert {"data", "state", "lake", "quarantine", "exports"} <= written
    assert any(home.glob("data/ground_truth/*")) and (home / "data/core_banking/contacts.csv").exists()
    assert _exposed(home) == []


def test_make_private_tightens_an_older_home_once(tmp_path):
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True, mode=0o755)
    (home / "data" / "core_banking").mkdir(parents=True, mode=0o755)
    csv = home / "data" / "core_banking" / "contacts.csv"
    csv.write_text("User,Email\n")
    csv.chmod(0o644)
    keyring = home / "state" / "keyring.json"
    keyring.write_text("{}")
    keyring.chmod(0o644)
    old = os.umask(0o022)
    try:
        make_private(Settings(home=home))
        assert os.umask(0o022) == 0o077  # the process umask was set
    finally:
        os.umask(old)
    assert stat.S_IMODE(csv.stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "data" / "core_banking").stat().st_mode) == 0o700
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    # a keyring others could read is left for its loader to refuse (and the operator to rotate)
    assert stat.S_IMODE(keyring.stat().st_mode) == 0o644


def test_tighten_tree_never_adds_permissions(tmp_path):
    f = tmp_path / "f"
    f.write_text("x")
    f.chmod(0o400)
    g = tmp_path / "g"
    g.write_text("x")
    g.chmod(0o664)
    assert tighten_tree(tmp_path) == 1
    assert stat.S_IMODE(f.stat().st_mode) == 0o400 and stat.S_IMODE(g.stat().st_mode) == 0o600


def test_a_readable_keyring_is_refused_with_one_line_naming_it(tmp_path):
    home = tmp_path / "home"
    admin = tmp_path / "root.token"
    _cli(home, "identity", "create", "root", "--role", "admin", "--out", str(admin))
    _cli(home, "crypto", "status", identity=admin)
    (home / "state" / "keyring.json").chmod(0o644)
    env = {**os.environ, "CDP_HOME": str(home), "CDP_IDENTITY_FILE": str(admin)}
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "crypto", "status"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2
    assert (
        done.stderr.strip()
        == "error: keyring keyring.json has mode 0644; it must be 0600 (owner read/write only)"
    )


def test_a_home_holding_the_working_folder_is_not_tightened(tmp_path, monkeypatch):
    work = tmp_path / "project"
    work.mkdir(mode=0o755)
    work.chmod(0o755)
    (work / "notes.txt").write_text("x")
    (work / "notes.txt").chmod(0o644)
    monkeypatch.chdir(work)
    old = os.umask(0o022)
    try:
        make_private(Settings(home=work))
    finally:
        os.umask(old)
    assert stat.S_IMODE(work.stat().st_mode) == 0o755
    assert stat.S_IMODE((work / "notes.txt").stat().st_mode) == 0o644
