"""The notifier built over the platform's ports (the `cdp notify run` command and the demo use this)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from cdp.catalog.port import CatalogError
from cdp.corebanking.contact_preferences import ContactPreferenceStore
from cdp.corebanking.notices import NoticeAddressing
from cdp.feedback.replies import ReplyBook
from cdp.lake import tables
from engagement.compose import Composer
from engagement.context import CustomerKind, clv_band
from engagement.ledger import Ledger
from engagement.notifier import Notifier, NotifyConfig
from engagement.templates import approved

if TYPE_CHECKING:
    from cdp.backends import Backends
    from cdp.security.vault import Caller
    from cdp.settings import Settings


def ledger_path(settings: Settings):  # noqa: ANN201 - a Path
    return settings.state_dir / "notifier.sqlite"


def notify_config(settings: Settings) -> NotifyConfig:
    return NotifyConfig(
        episode=timedelta(minutes=settings.notify_episode_minutes),
        max_per_customer_per_day=settings.notify_max_per_customer_per_day,
        send_attempts=settings.notify_send_attempts,
        retry_base_seconds=settings.notify_retry_base_seconds,
        sender=settings.mail_from,
        send_batch=settings.notify_send_batch,
    )


def protected_names(backends: Backends) -> dict[str, str | None]:
    """Each customer token's protected name, from the lake's customers table (nothing before the batch)."""
    try:
        backends.catalog.register_table(tables.CUSTOMERS.info(backends.settings.lake_bucket))
        rows = backends.catalog.query("SELECT user_token, person_enc FROM customers").to_pylist()
    except CatalogError:
        return {}
    return {r["user_token"]: r["person_enc"] for r in rows}


def addressing_of(backends: Backends, caller: Caller) -> NoticeAddressing:
    return NoticeAddressing(
        backends.oltp,
        backends.protector,
        backends.vault,
        ContactPreferenceStore.from_settings(backends.settings),
        caller,
        lambda: protected_names(backends),
    )


def champion_kinds(backends: Backends) -> dict[str, CustomerKind]:
    """Each customer's segment and CLV band from the CLV and segmentation champions (empty without them)."""
    from inference.config import ServingConfig
    from inference.holder import ModelHolder, ModelUnavailableError
    from inference.loaded import load_version
    from inference.profiles import ProfileUnavailableError, build_profiles

    config = ServingConfig.from_settings(backends.settings)

    def load(version):  # noqa: ANN001, ANN202 - a ModelVersion -> LoadedModel
        return load_version(version, backends.object_store)

    holders = [
        ModelHolder(n, backends.model_registry, load, 0)
        for n in (config.clv_model, config.segmentation_model)
    ]
    try:
        for h in holders:
            h.refresh()
        profiles = build_profiles(backends.catalog, holders[0].current, holders[1].current)
    except (ModelUnavailableError, ProfileUnavailableError, CatalogError):
        return {}
    return {t: CustomerKind(p.segment_name, clv_band(p.clv_12m_cents)) for t, p in profiles.items()}


def build_notifier(
    backends: Backends, caller: Caller, kinds: dict[str, CustomerKind] | None = None
) -> Notifier:
    """The fraud-notice consumer over `backends` (writer, mail, core banking), acting as `caller`."""
    s = backends.settings
    known = champion_kinds(backends) if kinds is None else kinds
    return Notifier(
        Ledger(ledger_path(s)),
        Composer(backends.text_writer),
        addressing_of(backends, caller),
        backends.mail,
        approved("fraud-notice", s.notify_language),
        notify_config(s),
        kind_of=lambda token: known.get(token, CustomerKind()),
        replies=ReplyBook.of(backends),
    )
