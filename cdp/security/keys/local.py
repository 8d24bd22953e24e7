"""Local key manager: a keyring file of versioned AES-256 master keys and AES-GCM envelope wrapping.

Keyring file (JSON, mode 0600, refused when group/other have any access):
    {"format": 1, "current": "v2", "keys": {"v1": "<base64 key>", "v2": "<base64 key>"}}

Wrapped data key (bytes): b"LK1" | len(version) (1 byte) | version (ascii) | nonce (12) | AES-GCM(key)
(32 + 16 tag). The associated data is the version followed by the canonical JSON of the encryption context,
so a wrapped key opens only under the same context and the master key version it names.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.security.errors import KeyAccessError, KeyringPermissionError
from cdp.security.keys.port import DataKey, canonical_context

if TYPE_CHECKING:
    from cdp.settings import Settings

_MAGIC = b"LK1"
_NONCE = 12
_FORMAT = 1


class LocalKeyring:
    """`KeyManager` over a keyring file of master keys; the file is created (mode 0600) if missing."""

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalKeyring:
        """The platform keyring under the state folder (`<home>/state/keyring.json`)."""
        return cls(settings.state_dir / "keyring.json")

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.exists():
            self._create()
        self._stamp = self._file_stamp()
        self._current, self._masters = self._load()

    # -- KeyManager ---------------------------------------------------------------------------------
    def generate_data_key(self, context: dict[str, str]) -> DataKey:
        self._reload_if_changed()  # another process may have rotated: wrap under its current version
        plaintext = AESGCM.generate_key(bit_length=256)
        wrapped, version = self._wrap(plaintext, context)
        return DataKey(plaintext=plaintext, wrapped=wrapped, key_version=version)

    def decrypt_data_key(self, wrapped: bytes, context: dict[str, str]) -> bytes:
        version, nonce, sealed = _parse(wrapped)
        master = self._masters.get(version)
        if master is None:  # rotated by another process since we loaded: reload once
            self._reload()
            master = self._masters.get(version)
            if master is None:
                raise KeyAccessError(f"master key version {version!r} is not in the keyring {self.path.name}")
        try:
            return AESGCM(master).decrypt(nonce, sealed, _aad(version, context))
        except InvalidTag:
            raise KeyAccessError(
                "data key cannot be unwrapped: the encryption context differs or the wrapped key was altered"
            ) from None

    def rotate(self) -> str:
        with self._exclusive():
            current, masters = self._load()
            version = f"v{max(int(v[1:]) for v in masters) + 1}"
            masters[version] = AESGCM.generate_key(bit_length=256)
            self._write(version, masters)
            with self._lock:
                self._current, self._masters, self._stamp = version, masters, self._file_stamp()
        return version

    @property
    def current_version(self) -> str:
        self._reload_if_changed()
        return self._current

    def rewrap(self, wrapped: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        plaintext = self.decrypt_data_key(wrapped, context)
        self._reload_if_changed()
        return self._wrap(plaintext, context)

    def retire(self, in_use: set[str]) -> tuple[str, ...]:
        with self._exclusive():
            current, masters = self._load()
            retired = tuple(v for v in masters if v != current and v not in in_use)
            if retired:
                kept = {v: k for v, k in masters.items() if v not in retired}
                self._write(current, kept)
                with self._lock:
                    self._current, self._masters, self._stamp = current, kept, self._file_stamp()
        return retired

    # -- introspection ------------------------------------------------------------------------------
    @staticmethod
    def version_of(wrapped: bytes) -> str:
        """The master key version a wrapped key names."""
        return _parse(wrapped)[0]

    @property
    def versions(self) -> tuple[str, ...]:
        return tuple(self._masters)

    def __repr__(self) -> str:
        return f"LocalKeyring(path={str(self.path)!r}, current={self._current!r})"

    def _wrap(self, plaintext: bytes, context: dict[str, str]) -> tuple[bytes, str]:
        with self._lock:
            version, master = self._current, self._masters[self._current]
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(master).encrypt(nonce, plaintext, _aad(version, context))
        vb = version.encode("ascii")
        return _MAGIC + bytes([len(vb)]) + vb + nonce + sealed, version

    # -- file handling ------------------------------------------------------------------------------
    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._exclusive():
            if self.path.exists():  # created by another process while we waited
                return
            self._write("v1", {"v1": AESGCM.generate_key(bit_length=256)})

    def _write(self, current: str, masters: dict[str, bytes]) -> None:
        doc = {
            "format": _FORMAT,
            "current": current,
            "keys": {v: base64.b64encode(k).decode("ascii") for v, k in masters.items()},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by umask; make it exact
            os.write(fd, json.dumps(doc, indent=1).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def _load(self) -> tuple[str, dict[str, bytes]]:
        mode = stat.S_IMODE(self.path.stat().st_mode)
        if mode & 0o077:
            raise KeyringPermissionError(
                f"keyring {self.path.name} has mode {mode:04o}; it must be 0600 (owner read/write only)"
            )
        doc: dict[str, Any] = json.loads(self.path.read_text())
        if doc.get("format") != _FORMAT:
            raise KeyAccessError(f"keyring {self.path.name} has an unknown format {doc.get('format')!r}")
        masters = {v: base64.b64decode(k) for v, k in doc["keys"].items()}
        if doc["current"] not in masters or any(len(k) != 32 for k in masters.values()):
            raise KeyAccessError(f"keyring {self.path.name} is inconsistent (current version or key size)")
        return doc["current"], masters

    def _reload(self) -> None:
        stamp = self._file_stamp()
        current, masters = self._load()
        with self._lock:
            self._current, self._masters, self._stamp = current, masters, stamp

    def _file_stamp(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _reload_if_changed(self) -> None:
        """Re-read the keyring when another process replaced it (one stat per call)."""
        if self._file_stamp() != self._stamp:
            self._reload()

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """A cross-process lock around keyring changes (a sibling `.lock` file)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _aad(version: str, context: dict[str, str]) -> bytes:
    return version.encode("ascii") + b"\x00" + canonical_context(context)


def _parse(wrapped: bytes) -> tuple[str, bytes, bytes]:
    if not isinstance(wrapped, bytes | bytearray) or wrapped[:3] != _MAGIC or len(wrapped) < 5:
        raise KeyAccessError("not a wrapped data key of the local keyring")
    n = wrapped[3]
    version = bytes(wrapped[4 : 4 + n]).decode("ascii", errors="replace")
    nonce = bytes(wrapped[4 + n : 4 + n + _NONCE])
    sealed = bytes(wrapped[4 + n + _NONCE :])
    if len(nonce) != _NONCE or len(sealed) != 32 + 16:
        raise KeyAccessError("wrapped data key is truncated")
    return version, nonce, sealed
