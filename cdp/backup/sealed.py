"""The sealed archive format: a zlib-compressed stream cut into chunks, each sealed with AES-256-GCM.

    MAGIC | u32 header length | header (canonical JSON) | chunk* ;  chunk = u32 length | AES-GCM output

A fresh data key seals the chunks; the header carries it wrapped by the recovery key (AES-GCM, associated
data: the backup id and the recovery key's id). Chunk i is sealed with nonce = 8-byte prefix | u32 i and
associated data = SHA-256(MAGIC | header) | u32 i | final flag, so changing the header, changing, dropping,
reordering or appending chunks, or cutting the file short fails authentication (the last chunk is flagged
final and nothing may follow it). Readers decrypt chunk by chunk: memory stays bounded whatever the size.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import zlib
from dataclasses import dataclass
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.backup.errors import ArchiveIntegrityError, WrongRecoveryKey
from cdp.backup.recovery_key import RecoveryKey

MAGIC = b"CDP-BACKUP-1\n"
FORMAT = 1
CHUNK_BYTES = 1 << 20
_MAX_HEADER = 64 << 10
_MAX_CHUNK = CHUNK_BYTES + 16 + 1024
_U32 = struct.Struct(">I")


@dataclass(frozen=True)
class Header:
    """What an archive says about itself before it is opened (no contents, no key material in clear)."""

    backup_id: str
    created: str  # ISO-8601 UTC
    recovery_key_id: str
    wrapped_key: bytes
    wrap_nonce: bytes
    nonce_prefix: bytes

    def to_bytes(self) -> bytes:
        doc = {
            "format": FORMAT,
            "cipher": "AES-256-GCM",
            "compression": "zlib",
            "backup_id": self.backup_id,
            "created": self.created,
            "recovery_key_id": self.recovery_key_id,
            "wrapped_key": _b64(self.wrapped_key),
            "wrap_nonce": _b64(self.wrap_nonce),
            "nonce_prefix": _b64(self.nonce_prefix),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Header:
        try:
            doc: dict[str, Any] = json.loads(raw)
            if doc.get("format") != FORMAT:
                raise ArchiveIntegrityError(f"archive format {doc.get('format')!r} is not known")
            return cls(
                backup_id=str(doc["backup_id"]),
                created=str(doc["created"]),
                recovery_key_id=str(doc["recovery_key_id"]),
                wrapped_key=base64.b64decode(doc["wrapped_key"]),
                wrap_nonce=base64.b64decode(doc["wrap_nonce"]),
                nonce_prefix=base64.b64decode(doc["nonce_prefix"]),
            )
        except (ValueError, KeyError, TypeError):
            raise ArchiveIntegrityError("archive header is malformed") from None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _wrap_aad(backup_id: str, key_id: str) -> bytes:
    return f"cdp-backup-key\x00{backup_id}\x00{key_id}".encode()


def _chunk_aad(header_digest: bytes, index: int, final: bool) -> bytes:
    return header_digest + _U32.pack(index) + (b"\x01" if final else b"\x00")


class SealedWriter:
    """A write-only file object: bytes written are compressed, chunked and sealed into `out`."""

    def __init__(self, out: IO[bytes], recovery: RecoveryKey, backup_id: str, created: str) -> None:
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce = os.urandom(12)
        wrapped = AESGCM(recovery.key).encrypt(wrap_nonce, data_key, _wrap_aad(backup_id, recovery.key_id))
        self.header = Header(backup_id, created, recovery.key_id, wrapped, wrap_nonce, os.urandom(8))
        raw = self.header.to_bytes()
        out.write(MAGIC + _U32.pack(len(raw)) + raw)
        self._digest = hashlib.sha256(MAGIC + raw).digest()
        self._aead = AESGCM(data_key)
        self._out = out
        self._zip = zlib.compressobj(6)
        self._buffer = bytearray()
        self._index = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._buffer += self._zip.compress(data)
        while len(self._buffer) > CHUNK_BYTES:  # keep at least one byte back for the final chunk
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def close(self) -> None:
        """Seal what is left as the final chunk (the output file itself stays open)."""
        if self.closed:
            return
        self._buffer += self._zip.flush()
        while len(self._buffer) > CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]), final=False)
            del self._buffer[:CHUNK_BYTES]
        self._emit(bytes(self._buffer), final=True)
        self._buffer.clear()
        self.closed = True

    def _emit(self, plain: bytes, *, final: bool) -> None:
        nonce = self.header.nonce_prefix + _U32.pack(self._index)
        sealed = self._aead.encrypt(nonce, plain, _chunk_aad(self._digest, self._index, final))
        self._out.write(_U32.pack(len(sealed)) + sealed)
        self._index += 1


def read_header(source: IO[bytes]) -> tuple[Header, bytes]:
    """The archive's header and its digest (what chunk authentication binds)."""
    magic = source.read(len(MAGIC))
    if magic != MAGIC:
        raise ArchiveIntegrityError("not a platform backup archive")
    size_raw = source.read(4)
    if len(size_raw) != 4 or not 0 < _U32.unpack(size_raw)[0] <= _MAX_HEADER:
        raise ArchiveIntegrityError("archive header is malformed")
    raw = source.read(_U32.unpack(size_raw)[0])
    return Header.from_bytes(raw), hashlib.sha256(MAGIC + raw).digest()


class SealedReader:
    """A read-only file object over an archive's decrypted, decompressed stream.

    Raises `WrongRecoveryKey` at once when the key is not the archive's, and `ArchiveIntegrityError` at
    the first chunk that fails authentication, at a cut-short file, or at data after the final chunk."""

    def __init__(self, source: IO[bytes], recovery: RecoveryKey) -> None:
        self.header, self._digest = read_header(source)
        if self.header.recovery_key_id != recovery.key_id:
            raise WrongRecoveryKey(
                f"the archive was sealed with recovery key {self.header.recovery_key_id}, "
                f"not with the given key {recovery.key_id}"
            )
        try:
            data_key = AESGCM(recovery.key).decrypt(
                self.header.wrap_nonce,
                self.header.wrapped_key,
                _wrap_aad(self.header.backup_id, recovery.key_id),
            )
        except (InvalidTag, ValueError):
            raise ArchiveIntegrityError(
                "the archive's data key does not open: the header was altered"
            ) from None
        self._aead = AESGCM(data_key)
        self._source = source
        self._unzip = zlib.decompressobj()
        self._buffer = bytearray()
        self._index = 0
        self._done = False

    def read(self, size: int = -1) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            self._buffer += self._next_chunk()
        n = len(self._buffer) if size < 0 else min(size, len(self._buffer))
        out = bytes(self._buffer[:n])
        del self._buffer[:n]
        return out

    def drain(self) -> None:
        """Read (and so authenticate) everything that is left."""
        while self.read(CHUNK_BYTES):
            pass

    def _next_chunk(self) -> bytes:
        """The next chunk, authenticated and decompressed (the final one flushes the decompressor)."""
        size_raw = self._source.read(4)
        if len(size_raw) != 4:
            raise ArchiveIntegrityError(f"the archive is cut short (chunk {self._index} missing)")
        size = _U32.unpack(size_raw)[0]
        if not 16 <= size <= _MAX_CHUNK:
            raise ArchiveIntegrityError(f"archive chunk {self._index} is malformed")
        sealed = self._source.read(size)
        nonce = self.header.nonce_prefix + _U32.pack(self._index)
        for final in (False, True):
            try:
                plain = self._aead.decrypt(nonce, sealed, _chunk_aad(self._digest, self._index, final))
            except InvalidTag:
                continue
            self._index += 1
            if final:
                if self._source.read(1):
                    raise ArchiveIntegrityError("the archive has data after its final chunk")
                self._done = True
                plain = self._unzip.decompress(plain) + self._unzip.flush()
                if not self._unzip.eof or self._unzip.unused_data:
                    raise ArchiveIntegrityError("the archive's compressed stream is incomplete")
                return plain
            return self._unzip.decompress(plain)
        raise ArchiveIntegrityError(f"archive chunk {self._index} fails authentication: altered or corrupt")
