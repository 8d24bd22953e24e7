"""De-identified context of a notice: what a text writer may know, in closed-vocabulary words.

Nothing here copies a free-text field: the merchant's city never appears (the place is a US state name
from a fixed table, "abroad" or "online"), the merchant category comes from the ISO 18245 table, amounts
are bands, times are parts of the day, the model's reasons are fixed phrases. So a hostile value in a
source field ("ignore previous instructions...") has no way into a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California",
    "CO": "Colorado", "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia",
    "FL": "Florida", "GA": "Georgia", "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana",
    "IA": "Iowa", "KS": "Kansas", "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland",
    "MA": "Massachusetts", "MI": "Michigan", "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri",
    "MT": "Montana", "NE": "Nebraska", "NV": "Nevada", "NH": "New Hampshire", "NJ": "New Jersey",
    "NM": "New Mexico", "NY": "New York", "NC": "North Carolina", "ND": "North Dakota", "OH": "Ohio",
    "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania", "RI": "Rhode Island", "SC": "South Carolina",
    "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas", "UT": "Utah", "VT": "Vermont",
    "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin", "WY": "Wyoming",
    "PR": "Puerto Rico",
}  # fmt: skip

AMOUNT_BANDS = (
    (1_000, "under $10"),
    (5_000, "$10 to $50"),
    (10_000, "$50 to $100"),
    (25_000, "$100 to $250"),
    (100_000, "$250 to $1,000"),
    (500_000, "$1,000 to $5,000"),
)
_OVER = "over $5,000"
CHANNELS = {"online": "online", "chip": "in a shop (chip)", "swipe": "in a shop (swiped)"}
# The model's reason codes (feature names) in plain words: the first rule whose key is in the name wins.
REASON_WORDS = (
    ("bad_credential", "failed PIN or card checks before it"),
    ("error", "failed attempts before it"),
    ("foreign", "a place far from the card's usual"),
    ("city", "a place new to the card"),
    ("state", "a place new to the card"),
    ("merchant", "a merchant new to the card"),
    ("mcc", "a kind of shop the card rarely uses"),
    ("amount", "an amount unusual for the card"),
    ("count", "several payments in a short time"),
    ("since", "a payment very soon after the last one"),
    ("hour", "an unusual time of day"),
    ("online", "an online payment"),
    ("chip", "the card's chip was not used"),
)
_WORDS = re.compile(r"[^A-Za-z ,&()/-]+")


def _segment_vocabulary() -> frozenset[str]:
    from training.segmentation.naming import TRAITS

    words = {w for _, high, low in TRAITS for phrase in (high, low) if phrase for w in phrase.split()}
    return frozenset(words | {"high-value", "low-value", "everyday", "spenders", "&"})


SEGMENT_WORDS = _segment_vocabulary()  # no age words: a protected attribute never words a message


@dataclass(frozen=True, slots=True)
class Alert:
    """One fraud alert as the notifier reads it (tokens and transaction facts; no personal data)."""

    txn_id: str
    user_token: str
    card_token: str
    ts: datetime
    amount_cents: int
    mcc: int | None
    channel: str | None
    merchant_state: str | None
    probability: float
    reasons: tuple[str, ...] = ()  # feature names, strongest first


def amount_band(cents: int) -> str:
    """The amount's band in dollars ("$100 to $250"); refunds are "a refund"."""
    if cents < 0:
        return "a refund"
    return next((band for upper, band in AMOUNT_BANDS if cents < upper), _OVER)


def time_of_day(ts: datetime) -> str:
    """night (0-5h), morning (6-11h), afternoon (12-17h) or evening (18-23h), local time."""
    return ("night", "morning", "afternoon", "evening")[ts.hour // 6]


def coarse_place(channel: str | None, merchant_state: str | None) -> str:
    """ "online", a US state's name, "abroad", or "an unknown place"."""
    if channel == "online":
        return "online"
    if not merchant_state:
        return "an unknown place"
    return US_STATES.get(merchant_state.strip().upper(), "abroad")


@lru_cache(maxsize=1024)
def merchant_category(mcc: int | None) -> str:
    """The ISO 18245 description of a merchant category code, in plain words ("a merchant" if unknown)."""
    if mcc is None:
        return "a merchant"
    try:
        import iso18245

        entry = iso18245.get_mcc(f"{int(mcc):04d}")
        text = entry.iso_description or entry.usda_description or entry.range.description
    except Exception:  # noqa: BLE001 - unknown or reserved codes: a neutral phrase
        return "a merchant"
    words = " ".join(_WORDS.sub(" ", text or "").split())[:80]
    return words.lower() if words else "a merchant"


def reason_words(features: Sequence[str], limit: int = 2) -> str:
    """The first `limit` distinct plain-word reasons of the model's reason codes."""
    phrases: list[str] = []
    for name in features:
        phrase = next((p for key, p in REASON_WORDS if key in name.lower()), "an unusual pattern")
        if phrase not in phrases:
            phrases.append(phrase)
    return ", ".join(phrases[:limit]) or "an unusual pattern"


def clv_band(clv_cents: float | None) -> str:
    """low (< $1,000 a year), medium (< $10,000) or high; "unknown" without a value."""
    if clv_cents is None:
        return "unknown"
    return "low" if clv_cents < 100_000 else "medium" if clv_cents < 1_000_000 else "high"


@dataclass(frozen=True, slots=True)
class CustomerKind:
    """The customer's segment name and CLV band (from the champions; "unknown" without them)."""

    segment: str = "unknown"
    clv_band: str = "unknown"


def segment_words(name: str) -> str:
    """A segment's name in the segment vocabulary only (age words and anything else dropped)."""
    words = [w for w in name.lower().split() if w in SEGMENT_WORDS]
    return " ".join(words).strip(" &") or "unknown"


def fraud_context(alerts: Sequence[Alert], kind: CustomerKind) -> dict[str, str]:
    """The writer's context for one episode: its first alert's facts, the count, the customer's kind."""
    first = alerts[0]
    reasons = [r for a in alerts for r in a.reasons]
    segment = segment_words(kind.segment)
    return {
        "notice": "fraud",
        "merchant_category": merchant_category(first.mcc),
        "amount_band": amount_band(first.amount_cents),
        "channel": CHANNELS.get(first.channel or "", "by card"),
        "time_of_day": time_of_day(first.ts),
        "place": coarse_place(first.channel, first.merchant_state),
        "reasons": reason_words(reasons),
        "transactions": str(len(alerts)),
        "segment": segment,
        "clv_band": kind.clv_band if kind.clv_band in ("low", "medium", "high") else "unknown",
    }


def offer_context(offer: str, kind: CustomerKind) -> dict[str, str]:
    """The writer's context of a marketing offer: the offer's name and the customer's segment."""
    return {
        "notice": "offer",
        "offer": offer,
        "segment": segment_words(kind.segment),
        "clv_band": kind.clv_band,
    }


def as_mapping(context: Mapping[str, str]) -> dict[str, str]:
    return dict(sorted(context.items()))
