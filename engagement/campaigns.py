"""Marketing campaigns: an approved offer per CLV band, to the customers of one segment who consented.

Who gets an offer is decided by three things only: the segment (from the champion segmentation, in its
age-free vocabulary), the CLV band (from the champion CLV model) and the customer's marketing consent
(core banking, off by default). Protected attributes (gender, age) are never read; a segment argument
naming one is refused. A customer gets at most one offer per `cap_days`; a campaign's offer to a customer
has a stable id per month, so a rerun sends nothing again. `dry_run` composes without recording or sending,
and renders samples with the placeholders masked.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

from engagement.compose import Composer
from engagement.context import SEGMENT_WORDS, CustomerKind, offer_context, segment_words
from engagement.notifier import Notifier
from engagement.templates import approved

OFFERS = {
    "high": "a premium card with travel insurance and no foreign fees",
    "medium": "a cashback boost on everyday spending for three months",
    "low": "a savings pot with no fees and a small welcome bonus",
}
PROTECTED_WORDS = frozenset({"young", "senior", "old", "age", "male", "female", "men", "women", "gender"})
MASK = "*****"


class CampaignRefused(ValueError):
    """A campaign that may not run (a protected attribute in its selection, an unknown band)."""


@dataclass
class CampaignReport:
    segment: str
    clv_band: str
    selected: int = 0  # customers of the segment and band
    skipped: Counter[str] = field(default_factory=Counter)  # no-consent, erased, capped, already-sent
    composed: int = 0
    sent: int = 0
    samples: list[str] = field(default_factory=list)


def campaign_selection(segment: str, clv_band: str) -> str:
    """The campaign's segment in the segment vocabulary; `CampaignRefused` for protected words, words
    outside the vocabulary or an unknown band."""
    words = set(segment.lower().split())
    if words & PROTECTED_WORDS:
        raise CampaignRefused("a campaign may not select by age or gender")
    if not words or not words <= SEGMENT_WORDS:
        raise CampaignRefused("the segment must be named in the segment vocabulary")
    if clv_band not in OFFERS:
        raise CampaignRefused(f"the CLV band must be one of: {', '.join(OFFERS)}")
    return segment_words(segment)


def offer_id(segment: str, clv_band: str, user_token: str, today: date) -> str:
    key = f"{segment}|{clv_band}|{user_token}|{today:%Y-%m}"
    return "ofr-" + hashlib.sha256(key.encode()).hexdigest()[:24]


def run_campaign(
    notifier: Notifier,
    kinds: dict[str, CustomerKind],
    segment: str,
    clv_band: str,
    *,
    dry_run: bool = False,
    cap_days: int = 30,
    today: date | None = None,
    language: str = "en",
) -> CampaignReport:
    """Compose (and unless `dry_run`, record and send) the campaign's offers."""
    wanted = campaign_selection(segment, clv_band)
    today = today or date.today()
    template = approved("offer", language)
    composer: Composer = notifier.composer
    report = CampaignReport(wanted, clv_band)
    for token in sorted(
        t for t, k in kinds.items() if segment_words(k.segment) == wanted and k.clv_band == clv_band
    ):
        report.selected += 1
        addressee = notifier.addressing.addressee(token)
        if addressee is None:
            report.skipped["erased"] += 1
            continue
        if not notifier.addressing.choices(addressee).marketing:
            report.skipped["no-consent"] += 1
            continue
        nid = offer_id(wanted, clv_band, token, today)
        if notifier.ledger.exists(nid):
            report.skipped["already-sent"] += 1
            continue
        if notifier.ledger.offers_since(token, (today - timedelta(days=cap_days)).isoformat()):
            report.skipped["capped"] += 1
            continue
        c = composer.compose(template, offer_context(OFFERS[clv_band], kinds[token]), tone="friendly")
        report.composed += 1
        if dry_run:
            if len(report.samples) < 3:
                report.samples.append(c.body.replace("{first_name}", MASK).replace("{card_last4}", MASK))
            continue
        notifier.ledger.record(
            {
                "notice_id": nid, "kind": "offer", "user_token": token, "card_token": None,
                "day": today.isoformat(), "first_ts": today.isoformat(), "last_ts": today.isoformat(),
                "status": "pending", "template": c.template, "subject": c.subject, "body": c.body,
                "writer": c.writer, "context_json": c.context_json, "prompt_sha256": c.prompt_sha256,
                "prompt_chars": c.prompt_chars, "output_sha256": c.output_sha256,
                "output_chars": c.output_chars, "fallback": int(c.fallback),
                "guardrail_reasons": ",".join(c.reasons),
            },
            [],
        )  # fmt: skip
    if not dry_run:
        before = notifier.report.sent
        notifier.deliver_pending()
        report.sent = notifier.report.sent - before
    return report
