"""The access-checked decryption service: the only code that turns protected fields back into clear text.

Every call, allowed or not, writes one audit record (tokens and field names only). Errors name the
customer token and fields, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cdp.security.audit.port import AuditLog
from cdp.security.datakeys.port import DataKeyStore
from cdp.security.errors import AccessDenied, CustomerErased, KeyAccessError, SecurityError
from cdp.security.fieldcrypto import ENCRYPTED_FIELDS, associated_data, data_key_context, split
from cdp.security.keys.port import KeyManager
from cdp.security.policy import allowed_fields, may_erase
from cdp.security.tokens import is_user_token

Revealed = dict[str, str | None] | Exception  # a request's clear values, or the error `reveal` raises
_PURPOSE = re.compile(r"^[a-z0-9][a-z0-9-]{1,63}$")  # a code like "fraud-alert", not free text


@dataclass(frozen=True)
class Caller:
    """An authenticated principal: a stable id and one role."""

    id: str
    role: str


class PiiVault:
    """Decrypts protected fields for callers whose role allows it; erases customers; audits everything."""

    def __init__(self, keys: KeyManager, store: DataKeyStore, audit: AuditLog) -> None:
        self.keys = keys
        self.store = store
        self.audit = audit

    def reveal(
        self, caller: Caller, customer_token: str, fields: Mapping[str, str | None], purpose: str
    ) -> dict[str, str | None]:
        """Clear values of `fields` ({field name: protected string}) of one customer.

        The request is all-or-nothing: if the caller's role may not read one of the fields, nothing is
        decrypted and `AccessDenied` is raised. `purpose` is a short code (e.g. "fraud-alert").
        """
        (outcome,) = self.reveal_many(caller, [(customer_token, fields)], purpose)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def reveal_many(
        self,
        caller: Caller,
        requests: Sequence[tuple[str, Mapping[str, str | None]]],
        purpose: str,
    ) -> list[Revealed]:
        """`reveal` of several customers at once: per request its clear values or the error `reveal`
        would raise (returned, not raised). One audit record per request, as `reveal` writes, appended
        together (one write of the log) before anything is returned."""
        outcomes = [self._reveal_one(caller, token, fields, purpose) for token, fields in requests]
        self.audit.append_many([entry for entry, _ in outcomes])
        return [result for _, result in outcomes]

    def _reveal_one(
        self, caller: Caller, customer_token: str, fields: Mapping[str, str | None], purpose: str
    ) -> tuple[dict[str, Any], Revealed]:
        """(the audit record's content, the clear values or the error) of one reveal request."""
        names = sorted(fields)
        audit = {
            "actor": caller.id,
            "role": caller.role,
            "action": "reveal",
            "customer_token": customer_token if is_user_token(customer_token) else "invalid",
        }
        problem = _request_problem(customer_token, names, purpose)
        if problem:
            known = [f for f in names if f in ENCRYPTED_FIELDS]
            entry = {**audit, "fields": known, "outcome": "rejected", "details": {"reason": problem}}
            return entry, ValueError(f"reveal request rejected: {problem}")
        refused = [f for f in names if f not in allowed_fields(caller.role)]
        if refused or not names:
            reason = f"role {caller.role!r} may not decrypt {refused or 'any field'}"
            details = {"purpose": purpose, "reason": reason}
            entry = {**audit, "fields": names, "outcome": "denied", "details": details}
            return entry, AccessDenied(f"{reason} (customer {customer_token})")
        try:
            aead = AESGCM(self._data_key(customer_token))
            clear = {f: self._decrypt_field(aead, customer_token, f, fields[f]) for f in names}
        except SecurityError as e:
            details = {"purpose": purpose, "reason": type(e).__name__}
            return {**audit, "fields": names, "outcome": "failed", "details": details}, e
        return {**audit, "fields": names, "outcome": "allowed", "details": {"purpose": purpose}}, clear

    def forget(self, customer_token: str, caller: Caller) -> bool:
        """Crypto-shred a customer: delete their data key. True if a live key was deleted."""
        if not is_user_token(customer_token):
            raise ValueError("not a customer token")
        audit = {
            "actor": caller.id,
            "role": caller.role,
            "action": "forget",
            "customer_token": customer_token,
        }
        if not may_erase(caller.role):
            self.audit.append(**audit, fields=[], outcome="denied", details={"reason": "role may not erase"})
            raise AccessDenied(f"role {caller.role!r} may not erase customers (customer {customer_token})")
        deleted = self.store.delete(customer_token)
        self.audit.append(**audit, fields=[], outcome="allowed", details={"key_deleted": deleted})
        return deleted

    def export(self, customer_token: str, caller: Caller) -> dict[str, str | None]:
        """Subject-access export of everything held on a customer: not implemented yet."""
        raise NotImplementedError("export needs the core-banking store; not implemented yet")

    # -- internals ---------------------------------------------------------------------------------
    def _data_key(self, customer_token: str) -> bytes:
        wrapped = self.store.get(customer_token)
        if wrapped is None:
            if self.store.is_erased(customer_token):
                raise CustomerErased(customer_token)
            raise KeyAccessError(f"no data key for customer {customer_token}")
        return self.keys.decrypt_data_key(wrapped, data_key_context(customer_token))

    @staticmethod
    def _decrypt_field(aead: AESGCM, customer_token: str, field: str, ciphertext: str | None) -> str | None:
        if ciphertext is None:
            return None
        try:
            nonce, sealed = split(ciphertext)
            return aead.decrypt(nonce, sealed, associated_data(customer_token, field)).decode()
        except (ValueError, InvalidTag):
            raise KeyAccessError(
                f"field {field!r} does not decrypt for customer {customer_token}: "
                "written for another customer or field, or altered"
            ) from None


def _request_problem(customer_token: str, names: list[str], purpose: str) -> str | None:
    """Why a reveal request is malformed (a fixed phrase, never an echo of the input), or None."""
    if not is_user_token(customer_token):
        return "not a customer token"
    if any(f not in ENCRYPTED_FIELDS for f in names):
        return "unknown field names"
    if not isinstance(purpose, str) or not _PURPOSE.match(purpose):
        return "purpose must be a short lowercase code such as 'fraud-alert'"
    return None
