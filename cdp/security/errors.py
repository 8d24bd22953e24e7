"""Errors of the security package. Messages name tokens, fields and key versions, never PII values."""

from __future__ import annotations


class SecurityError(Exception):
    """Base class of every error raised by `cdp.security`."""


class KeyAccessError(SecurityError):
    """A wrapped key or ciphertext cannot be opened (wrong context, unknown key version, altered bytes)."""


class KeyringPermissionError(SecurityError):
    """The keyring file is readable or writable by other users; it must be mode 0600."""


class KeyRetirementUnsupported(SecurityError):
    """The key service keeps old master key versions itself; there is nothing to retire from here."""


class CustomerErased(SecurityError):
    """The customer's data key was deleted (crypto-shredded): their encrypted fields are gone for good."""

    def __init__(self, customer_token: str) -> None:
        super().__init__(f"customer {customer_token} was erased: their data key no longer exists")
        self.customer_token = customer_token


class AccessDenied(SecurityError):
    """The caller's role may not perform this action on these fields."""


class NotAuthenticated(SecurityError):
    """No valid identity: no token, a token that does not verify, an expired or revoked identity, or an
    unknown principal. Messages say which, never echo the token."""
