"""What `cdp keys create|list|revoke|rotate` do, as plain functions (the CLI parses, prints and exits).

Creating, revoking and rotating a key are written to the audit log (key id, scopes, label and dates; never
the key). A key expires after `--expires-in` (default: the `api_key_expiry_days` setting); rotating it
issues a new secret for the same key id, with a fresh expiry, while the old secret stays valid for the
`api_key_rotation_overlap_hours` setting, so its users switch without downtime.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from cdp.apikeys.keys import mint_key, mint_secret
from cdp.apikeys.port import SCOPES, ApiKeyRecord, ApiKeyStore, InvalidApiKeyRequestError

if TYPE_CHECKING:
    from cdp.security.audit.port import AuditLog
    from cdp.settings import Settings

CREATE_ACTION = "api-key-create"
REVOKE_ACTION = "api-key-revoke"
ROTATE_ACTION = "api-key-rotate"
NO_CUSTOMER = "-"
_LABEL = re.compile(r"^[A-Za-z0-9 ._:/-]{1,64}$")
_DURATION = re.compile(r"^([1-9][0-9]{0,5})([dh])$")
MAX_EXPIRY = timedelta(days=3660)


def parse_duration(text: str) -> timedelta:
    """`90d` or `12h` as a timedelta (at most ten years); `InvalidApiKeyRequestError` otherwise."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise InvalidApiKeyRequestError("a duration is a whole number of days or hours, e.g. 90d or 12h")
    number, unit = int(match.group(1)), match.group(2)
    duration = timedelta(days=number) if unit == "d" else timedelta(hours=number)
    if duration > MAX_EXPIRY:
        raise InvalidApiKeyRequestError("a key expires within ten years")
    return duration


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
    expires_in: timedelta | None = None,
    audit: AuditLog | None = None,
    actor: str = "cli",
) -> tuple[str, ApiKeyRecord]:
    """`cdp keys create LABEL --scope ... [--expires-in 90d]`: (the key, shown once; its stored record).
    `expires_in` None: the key never expires (the CLI always passes one)."""
    if not _LABEL.match(label):
        raise InvalidApiKeyRequestError("a label is 1-64 letters, digits, spaces or . _ : / -")
    key, key_id, digest = mint_key()
    now = _now()
    expires = None if expires_in is None else now + expires_in
    record = ApiKeyRecord(key_id, digest, check_scopes(scopes), label, now, expires_at=expires)
    store.add(record)
    if audit is not None:
        details = {
            "key_id": key_id,
            "scopes": " ".join(record.scopes),
            "label": label,
            "expires_at": str(record.public_view()["expires_at"]),
        }
        audit.append(
            actor=actor, role="api-admin", action=CREATE_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="allowed", details=details,
        )  # fmt: skip
    return key, record


def rotate_key(
    store: ApiKeyStore,
    key_id: str,
    *,
    overlap: timedelta,
    expires_in: timedelta | None,
    audit: AuditLog | None = None,
    actor: str = "cli",
) -> tuple[str, ApiKeyRecord]:
    """`cdp keys rotate KEY_ID`: (the new key, shown once; the record). The old secret keeps working for
    `overlap`, then only the new one does; the key's expiry restarts (`expires_in`, None: never).
    `UnknownApiKeyError` if absent, `ApiKeyError` if revoked."""
    if overlap < timedelta(0):
        raise InvalidApiKeyRequestError("the rotation overlap cannot be negative")
    key, digest = mint_secret(key_id)
    now = _now()
    record = store.rotate(key_id, digest, None if expires_in is None else now + expires_in, now + overlap)
    if audit is not None:
        view = record.public_view()
        audit.append(
            actor=actor, role="api-admin", action=ROTATE_ACTION, customer_token=NO_CUSTOMER, fields=[],
            outcome="allowed", details={"key_id": key_id, "expires_at": str(view["expires_at"]),
                                        "previous_valid_until": str(view["previous_valid_until"])},
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


def _expiry(expires_in: str | None, settings: Settings) -> timedelta | None:
    """`--expires-in` parsed, else the settings' default (0 days there: never expires)."""
    if expires_in is not None:
        return parse_duration(expires_in)
    days = settings.api_key_expiry_days
    return timedelta(days=days) if days else None


def cli_create(
    label: str,
    scopes: list[str],
    settings: Settings | None = None,
    actor: str = "cli",
    expires_in: str | None = None,
) -> dict[str, Any]:
    """`cdp keys create LABEL --scope S ... [--expires-in 90d]`: the new key (print it once) and its
    public record."""
    store, audit, settings = _platform_with_settings(settings)
    key, record = create_key(
        store, label, scopes, expires_in=_expiry(expires_in, settings), audit=audit, actor=actor
    )
    return {"api_key": key, **record.public_view()}


def cli_rotate(
    key_id: str, settings: Settings | None = None, actor: str = "cli", expires_in: str | None = None
) -> dict[str, Any]:
    """`cdp keys rotate KEY_ID [--expires-in 90d]`: the new key (print it once) and its public record;
    the old key works until `previous_valid_until`."""
    store, audit, settings = _platform_with_settings(settings)
    overlap = timedelta(hours=settings.api_key_rotation_overlap_hours)
    key, record = rotate_key(
        store, key_id, overlap=overlap, expires_in=_expiry(expires_in, settings), audit=audit, actor=actor
    )
    return {"api_key": key, **record.public_view()}


def _platform_with_settings(settings: Settings | None) -> tuple[ApiKeyStore, AuditLog, Settings]:
    from cdp.settings import get_settings

    settings = settings or get_settings()
    store, audit = _platform(settings)
    return store, audit, settings


def cli_list(settings: Settings | None = None) -> list[dict[str, Any]]:
    """`cdp keys list`."""
    store, _ = _platform(settings)
    return list_keys(store)


def cli_revoke(key_id: str, settings: Settings | None = None, actor: str = "cli") -> dict[str, Any]:
    """`cdp keys revoke KEY_ID`."""
    store, audit = _platform(settings)
    return revoke_key(store, key_id, audit=audit, actor=actor).public_view()
