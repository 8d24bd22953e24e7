"""Field encryption format shared by the protector (encrypts) and the vault (decrypts).

A protected field is a compact ASCII string: "1" (format version) + base64url, no padding, of
nonce (12 bytes) | AES-256-GCM ciphertext | tag (16 bytes). A 20-character name costs 1 + 64 characters.
The key is the customer's data key; the associated data is "<customer token>|<field name>", so a
ciphertext opens only for the customer and field it was written for. Null stays null.
Strings suit Parquet (dictionary/plain UTF-8 columns), JSON events and CSV alike.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

FORMAT_VERSION = "1"
NONCE_BYTES = 12

# Every field the protector encrypts (the vault's policy speaks of these names).
USER_ENCRYPTED_FIELDS = ("person", "address", "apartment", "email")
CARD_ENCRYPTED_FIELDS = ("card_number", "expires")
ENCRYPTED_FIELDS = USER_ENCRYPTED_FIELDS + CARD_ENCRYPTED_FIELDS
_URLSAFE = bytes.maketrans(b"+/", b"-_")


def data_key_context(customer_token: str) -> dict[str, str]:
    """Encryption context bound to a customer's wrapped data key."""
    return {"customer": customer_token, "use": "pii-fields"}


def associated_data(customer_token: str, field: str) -> bytes:
    """AEAD associated data of a field (`seal` inlines the same expression on its hot path)."""
    return f"{customer_token}|{field}".encode()


def seal(aead: AESGCM, customer_token: str, field: str, value: str) -> str:
    """Encrypt one field value into the protected string format."""
    nonce = os.urandom(NONCE_BYTES)
    blob = nonce + aead.encrypt(nonce, value.encode(), f"{customer_token}|{field}".encode())
    text = binascii.b2a_base64(blob, newline=False).translate(_URLSAFE).rstrip(b"=")
    return FORMAT_VERSION + text.decode("ascii")


def split(ciphertext: str) -> tuple[bytes, bytes]:
    """(nonce, sealed bytes) of a protected field string; ValueError if it is not one."""
    if not ciphertext or ciphertext[0] != FORMAT_VERSION:
        raise ValueError("not a protected field (unknown format version)")
    body = ciphertext[1:]
    blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    if len(blob) < NONCE_BYTES + 16:
        raise ValueError("protected field is truncated")
    return blob[:NONCE_BYTES], blob[NONCE_BYTES:]
