"""A customer's genuine purchases, vectorised with numpy (no per-row Python).

Daily Poisson counts follow the customer's trended rate; each purchase picks an open card, an hour from
the persona's daily cycle, a merchant category from the persona's mix, a channel (online share grows over
the years, chip only on chip cards after the roll-out), a place (home, or the destination of a trip) and a
favourite merchant there (Zipf ranks), an amount (log-normal per group x the customer's scale), sometimes
a refund, sometimes an error code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cdp.ibm.schema import ERROR_CODES
from cdp.synth.mcc import catalogue
from cdp.synth.people import UserProfile
from cdp.synth.personas import PERSONAS
from cdp.synth.reference import reference
from cdp.synth.streams import Stream, user_rng

SWIPE, CHIP, ONLINE = 0, 1, 2
CHANNEL_NAMES = ("swipe", "chip", "online")
REFUND_SHARE = 0.01  # share of genuine rows that are refunds (negative amount)
MERCHANTS_PER_CATEGORY = 2  # local merchants per (place, MCC) a customer chooses among
ONLINE_MERCHANTS_PER_CATEGORY = 8
ZIPF_EXPONENT = 2.6
TRIP_DAYS = (2, 10)  # trip length in days, [low, high)
AT_DESTINATION = 0.85  # share of in-person purchases made at the destination during a trip
ONLINE_PLACE, HOME_PLACE = 0, 1

# Error combinations: index 0 = none, then every single code and every pair, in ERROR_CODES order.
ERROR_COMBOS: tuple[tuple[str, ...], ...] = (
    (),
    *((c,) for c in ERROR_CODES),
    *((a, b) for i, a in enumerate(ERROR_CODES) for b in ERROR_CODES[i + 1 :]),
)
_COMBO_INDEX = {combo: i for i, combo in enumerate(ERROR_COMBOS)}
# P(error code) per row for genuine in-person / online purchases (ERROR_CODES order).
_ERROR_P_IN_PERSON = np.array([0.0, 0.0005, 0.0004, 0.0028, 0.0, 0.0095, 0.0020])
_ERROR_P_ONLINE = np.array([0.0010, 0.0006, 0.0008, 0.0, 0.0008, 0.0095, 0.0020])
SECOND_ERROR_SHARE = 0.05


@dataclass(frozen=True)
class Place:
    """Where a merchant is: a US city (with its zip codes), a foreign city, or online."""

    city: str
    state: str | None  # US state code, country name, or None online
    zips: tuple[str, ...] = ()  # empty for foreign and online places


@dataclass
class Activity:
    """Columns of a customer's transactions (unsorted until `sorted_by_card_time`)."""

    card: np.ndarray  # int8
    ts: np.ndarray  # int64 seconds since 1970 (local time)
    amount_cents: np.ndarray  # int64
    channel: np.ndarray  # int8: SWIPE | CHIP | ONLINE
    mcc_index: np.ndarray  # int16 index into the MCC catalogue
    place: np.ndarray  # int32 index into `places`
    rank: np.ndarray  # int16 merchant rank within (place, MCC)
    error_combo: np.ndarray  # int16 index into ERROR_COMBOS
    episode: np.ndarray  # int64 attack episode id, -1 for genuine rows
    places: list[Place] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, order: np.ndarray) -> Activity:
        return Activity(
            *(getattr(self, n)[order] for n in _ARRAY_FIELDS),
            places=self.places,  # type: ignore[arg-type]
        )

    def extended(self, other: Activity) -> Activity:
        """Rows of both (other's places are appended; its place indices must already account for that)."""
        return Activity(
            *(np.concatenate([getattr(self, n), getattr(other, n)]) for n in _ARRAY_FIELDS),
            places=self.places + other.places[len(self.places) :],
        )

    def sorted_by_card_time(self) -> Activity:
        """Rows in file order within a user: card, then time (stable)."""
        return self.take(np.lexsort((self.ts, self.card)))


_ARRAY_FIELDS = (
    "card",
    "ts",
    "amount_cents",
    "channel",
    "mcc_index",
    "place",
    "rank",
    "error_combo",
    "episode",
)


def online_adoption(year: np.ndarray) -> np.ndarray:
    """How far e-commerce has arrived (0 in the early 1990s, ~1 from 2016): scales the online share."""
    return 1.0 / (1.0 + np.exp(-(year - 2008.0) / 2.5))


def day_year(days: np.ndarray) -> np.ndarray:
    """Fractional calendar year of day numbers."""
    return 1970.0 + days / 365.2425


def draw_errors(
    rng: np.random.Generator,
    online: np.ndarray,
    p_in_person: np.ndarray,
    p_online: np.ndarray,
    scale: float = 1.0,
) -> np.ndarray:
    """Error-combination index per row: mostly none, sometimes one code, rarely two."""
    n = len(online)
    p = np.where(online[:, None], p_online[None, :], p_in_person[None, :]) * scale
    p_any = p.sum(axis=1)
    has = rng.random(n) < p_any
    combo = np.zeros(n, dtype=np.int16)
    idx = np.flatnonzero(has)
    if len(idx) == 0:
        return combo
    cum = np.cumsum(p[idx], axis=1)
    first = (cum < (rng.random(len(idx)) * p_any[idx])[:, None]).sum(axis=1)
    second = rng.integers(0, len(ERROR_CODES), size=len(idx))
    two = (rng.random(len(idx)) < SECOND_ERROR_SHARE) & (second != first)
    for j, (a, b, pair) in enumerate(zip(first, second, two, strict=True)):
        codes = tuple(sorted({int(a), int(b)})) if pair else (int(a),)
        combo[idx[j]] = _COMBO_INDEX[tuple(ERROR_CODES[c] for c in codes)]
    return combo


def _trips(
    rng: np.random.Generator, profile: UserProfile, end_day: int
) -> tuple[np.ndarray, np.ndarray, list[Place]]:
    persona = PERSONAS[profile.persona]
    ref = reference()
    years = (end_day - profile.start_day) / 365.25
    n = int(rng.poisson(persona.trips_per_year * years))
    starts = np.sort(rng.integers(profile.start_day, end_day + 1, size=n))
    ends = starts + rng.integers(*TRIP_DAYS, size=n)
    places = []
    for _ in range(n):
        if rng.random() < persona.foreign_trip_share:
            i = int(rng.choice(len(ref.foreign_city), p=ref.foreign_weight))
            places.append(Place(str(ref.foreign_city[i]), str(ref.foreign_country[i])))
        else:
            i = int(ref.destination_zips[rng.integers(len(ref.destination_zips))])
            city, state = str(ref.zip_city[i]), str(ref.zip_state[i])
            places.append(Place(city, state, ref.city_zips[(city, state)]))
    return starts, ends, places


def genuine_activity(profile: UserProfile, seed: int, end_day: int) -> Activity:
    """Every genuine purchase of one customer from the first card's opening to `end_day` (inclusive)."""
    rng = user_rng(seed, profile.user, Stream.ACTIVITY)
    persona = PERSONAS[profile.persona]
    cat = catalogue()
    ref = reference()
    home = Place(
        profile.home_city, profile.home_state, ref.city_zips[(profile.home_city, profile.home_state)]
    )

    days = np.arange(profile.start_day, end_day + 1, dtype=np.int64)
    day = np.repeat(days, rng.poisson(profile.daily_rate(days)))
    n = len(day)

    # card: among the cards already open, by the customer's card weights
    open_day = np.array([c.open_day for c in profile.cards])
    weight = np.array([c.weight for c in profile.cards])
    cum = np.cumsum((day[:, None] >= open_day[None, :]) * weight[None, :], axis=1)
    card = (cum < (rng.random(n) * cum[:, -1])[:, None]).sum(axis=1).astype(np.int8)

    hour = rng.choice(24, size=n, p=persona.hour_probabilities())
    minute = rng.integers(0, 60, size=n)
    ts = day * 86400 + hour * 3600 + minute * 60

    mcc_index = rng.choice(len(cat.codes), size=n, p=profile.mcc_probabilities()).astype(np.int16)

    online = rng.random(n) < persona.online_share * online_adoption(day_year(day))
    chip_day = np.array(
        [c.chip_day if c.chip_day is not None else np.iinfo(np.int64).max for c in profile.cards]
    )
    chip = ~online & (day >= chip_day[card])
    channel = np.where(online, ONLINE, np.where(chip, CHIP, SWIPE)).astype(np.int8)

    starts, ends, trip_places = _trips(rng, profile, end_day)
    place = np.where(online, ONLINE_PLACE, HOME_PLACE).astype(np.int32)
    if len(starts):
        t = np.searchsorted(starts, day, side="right") - 1
        away = (t >= 0) & (day < ends[np.maximum(t, 0)]) & ~online & (rng.random(n) < AT_DESTINATION)
        place = np.where(away, 2 + t, place).astype(np.int32)

    group = cat.group[mcc_index]
    log_amount = (
        np.log(cat.group_median[group])
        + profile.amount_log_scale
        + cat.group_sigma[group] * (rng.standard_normal(n))
    )
    amount = np.maximum(np.round(np.exp(log_amount) * 100), 1).astype(np.int64)
    amount = np.where(rng.random(n) < REFUND_SHARE, -amount, amount)

    size = np.where(online, ONLINE_MERCHANTS_PER_CATEGORY, MERCHANTS_PER_CATEGORY)
    offset = rng.integers(0, 1 << 30, size=len(cat.codes))  # each customer has their own favourites
    rank = ((np.minimum(rng.zipf(ZIPF_EXPONENT, size=n), 1000) - 1 + offset[mcc_index]) % size).astype(
        np.int16
    )

    errors = draw_errors(rng, online, _ERROR_P_IN_PERSON, _ERROR_P_ONLINE)
    return Activity(
        card=card,
        ts=ts.astype(np.int64),
        amount_cents=amount,
        channel=channel,
        mcc_index=mcc_index,
        place=place,
        rank=rank,
        error_combo=errors,
        episode=np.full(n, -1, dtype=np.int64),
        places=[Place("ONLINE", None), home, *trip_places],
    )


def expected_net_per_purchase(profile: UserProfile) -> float:
    """E[signed amount in dollars] of one genuine row (refunds included): the CLV oracle's unit value."""
    return (1 - 2 * REFUND_SHARE) * catalogue().expected_amount(
        profile.mcc_probabilities(), profile.amount_log_scale
    )
