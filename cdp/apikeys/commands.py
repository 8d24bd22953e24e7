"""What `cdp keys create|list|revoke` do, as plain functions (the CLI parses, prints and exits).

Creating and revoking a key are written to the audit log (key id, scopes and label; never the key).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cdp.apikeys.keys import mint_key
from cdp.apikeys.port import SCOPES, ApiKeyRecord, ApiKeyStore, InvalidApiKeyRequestError

if TYPE_CHECKING:
    from cdp.security.audit.port import AuditLog
    from cdp.settings import Settings

CREATE_ACTION = "api-key-create"
REVOKE_ACTION = "api-key-revoke"
NO_CUSTOMER = "-"
_LABEL = re.compile(r"^[A-Za-z0-9 ._:/-]{1,64}$")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The scopes, deduplicated in the canonical order; `InvalidApiKeyRequestError` for unknown ones."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise InvalidApiKeyRequestError(f"scopes must be one or more of: {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def create_key(
    store: ApiKeyStore,
    label: str,
    scopes: list[str] | tuple[str, ...],
    *,
    audit: AuditLog | None = None,
    actor: str = "cli",
) -> tuple[str, ApiKeyRecord]:
    """`cdp keys create LABEL --scope ...`: (the key, shown once; its stored record)."""
    if not _LABEL.match(label):
        raise InvalidApiKeyRequestError("a label is 1-64 letters, digits, spaces or . _ : / -")
    key, key_id, digest = mint_key()
    record = ApiKeyRecord(key_id, digest, check_scopes(scopes), label, _now())
    store.add(record)
    if audit is not None:
        audit.append(
            actor=actor, role="api-admin", action=CREATE_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="allowed", details={"key_id": key_id, "scopes": " ".join(record.scopes), "label": label},
        )  # fmt: skip
    return key, record


def list_keys(store: ApiKeyStore) -> list[dict[str, Any]]:
    """`cdp keys list`: every key's id, label, scopes and dates (never the key or its hash)."""
    return [r.public_view() for r in store.list()]


def revoke_key(
    store: ApiKeyStore, key_id: str, *, audit: AuditLog | None = None, actor: str = "cli"
) -> ApiKeyRecord:
    """`cdp keys revoke KEY_ID`: the key stops working on the next request; `UnknownApiKeyError` if absent."""
    record = store.revoke(key_id, _now())
    if audit is not None:
        audit.append(
            actor=actor, role="api-admin", action=REVOKE_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="allowed", details={"key_id": key_id},
        )  # fmt: skip
    return record


# -- the CLI's entry points: build the store and audit log from the settings ----------------------------
def _platform(settings: Settings | None) -> tuple[ApiKeyStore, AuditLog]:
    from cdp.backends import Backends
    from cdp.settings import get_settings

    backends = Backends(settings or get_settings())
    return backends.api_keys, backends.audit


def cli_create(
    label: str, scopes: list[str], settings: Settings | None = None, actor: str = "cli"
) -> dict[str, Any]:
    """`cdp keys create LABEL --scope S ...`: the new key (print it once) and its public record."""
    store, audit = _platform(settings)
    key, record = create_key(store, label, scopes, audit=audit, actor=actor)
    return {"api_key": key, **record.public_view()}


def cli_list(settings: Settings | None = None) -> list[dict[str, Any]]:
    """`cdp keys list`."""
    store, _ = _platform(settings)
    return list_keys(store)


def cli_revoke(key_id: str, settings: Settings | None = None, actor: str = "cli") -> dict[str, Any]:
    """`cdp keys revoke KEY_ID`."""
    store, audit = _platform(settings)
    return revoke_key(store, key_id, audit=audit, actor=actor).public_view()
