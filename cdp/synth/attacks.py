"""Fraud episodes: criminals using a compromised card in short bursts.

An episode is 3-15 purchases in a burst on one card (minutes to hours apart, sometimes resuming a day
later): online or in a city/country the cardholder never visits, at merchants new to the card, for amounts
set by what the thief buys rather than by the cardholder's usual level. Row by row an attack looks like
ordinary traffic of some other customer: trips go to the same big cities travellers visit, most purchases
are in everyday categories, hours follow the victim's own daily cycle with a lean to the night, and
bad-credential errors are only a little more frequent than in genuine traffic. What gives it away is the
card's history: new merchants and places in a burst, amounts above the card's level, an unusual channel or
hour for this card. Sometimes one purchase is reversed (negative amount at the same merchant) at the end.
Which share of attacks is online changes strongly across the years (card-present skimming early,
card-not-present later).

After the episode's last row the card is blocked (the cardholder or the bank noticed) and a new plastic is
sent for the same account, so the card index carries on once it arrives; nothing is bought on the card in
between (see `card_blocks`). A card's next episode starts only after its new plastic is in use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdp.synth.activity import (
    CHIP,
    MERCHANTS_PER_CATEGORY,
    ONLINE,
    ONLINE_MERCHANTS_PER_CATEGORY,
    ONLINE_PLACE,
    SWIPE,
    Activity,
    Place,
    day_year,
    draw_errors,
)
from cdp.synth.mcc import catalogue
from cdp.synth.people import UserProfile
from cdp.synth.personas import PERSONAS
from cdp.synth.reference import reference
from cdp.synth.streams import Stream, user_rng

EXTRA_EPISODES_MEAN = 1.0  # episodes per customer = 1 + Poisson(this): every customer is a victim
BURST_EXTRA_MEAN = 5.0  # purchases per episode = 3 + Poisson(this), at most 15
MAX_BURST = 15
BURST_GAP_S = 40 * 60  # mean gap between purchases of a burst (exponential)
MAX_SPAN_S = 9 * 86400  # a burst's purchases span at most this (a reversal may follow within 4 days)
RESUME_SHARE = 0.15  # share of gaps where the thief pauses and resumes a day or two later
REVERSAL_SHARE = 0.3
FOREIGN_SHARE = 0.3  # of in-person episodes
HIGH_RISK_SHARE = 0.3  # of attack purchases (the rest: everyday retail, dining, travel, fuel, entertainment)
ODD_HOUR_SHARE = 0.3  # bursts starting at 0-5 h; the others start at an hour drawn from the victim's cycle
AMOUNT_LOG_LIFT = 0.5  # attack amounts: the category's median x e^this, whatever the victim usually spends
# Online share of attacks by year (linear in between): the mix moves strongly over time.
_ONLINE_YEARS = np.array([1991, 2000, 2006, 2011, 2015, 2017, 2020])
_ONLINE_SHARE = np.array([0.10, 0.20, 0.65, 0.85, 0.35, 0.80, 0.90])
# P(error code) per attack row, ERROR_CODES order: mostly bad credentials.
_ERROR_P_IN_PERSON = np.array([0.0, 0.004, 0.003, 0.012, 0.0, 0.015, 0.003])
_ERROR_P_ONLINE = np.array([0.006, 0.004, 0.004, 0.0, 0.004, 0.015, 0.003])
_ODD_HOURS = np.arange(0, 6)
BLOCK_DELAY_S = (3600, 24 * 3600)  # the block follows the episode's last row by this much, [low, high)
REISSUE_DAYS = (5, 12)  # the new plastic is in use this many days after the block, [low, high)
NEXT_EPISODE_DAYS = 30  # a card's next episode starts at least this long after its new plastic


@dataclass(frozen=True)
class Episode:
    """One fraud episode: the thief's burst on one card, then the block and the new plastic."""

    episode_id: int
    card: int
    first_ts: int  # the episode's first row (seconds since 1970, local time)
    last_ts: int  # its last row (a reversal included)
    blocked_ts: int  # no purchase on the card from here ...
    reissued_ts: int  # ... until the new plastic (same account and card index) is in use


@dataclass
class Attacks:
    """A customer's attack rows and the episodes they belong to (in time order)."""

    activity: Activity
    episodes: list[Episode]


def attack_online_share(year: np.ndarray | float) -> np.ndarray:
    return np.interp(year, _ONLINE_YEARS, _ONLINE_SHARE)


def episode_id(user: int, episode: int) -> int:
    """Globally unique episode id."""
    return user * 64 + episode


def _never_visited_place(rng: np.random.Generator, profile: UserProfile, visited: set[str]) -> Place:
    ref = reference()
    while True:
        if rng.random() < FOREIGN_SHARE:
            i = int(rng.choice(len(ref.foreign_city), p=ref.foreign_weight))
            place = Place(str(ref.foreign_city[i]), str(ref.foreign_country[i]))
        else:
            i = int(ref.destination_zips[rng.integers(len(ref.destination_zips))])
            city, state = str(ref.zip_city[i]), str(ref.zip_state[i])
            place = Place(city, state, ref.city_zips[(city, state)])
        if f"{place.city}|{place.state}" not in visited:
            return place


def _episode_starts(rng: np.random.Generator, profile: UserProfile, end_day: int) -> list[tuple[int, int]]:
    """(card, start day) of each episode in time order: 1 + Poisson(EXTRA_EPISODES_MEAN) of them."""
    weights = np.array([c.weight for c in profile.cards])
    drawn = []
    for _ in range(1 + int(rng.poisson(EXTRA_EPISODES_MEAN))):
        c = int(rng.choice(len(profile.cards), p=weights / weights.sum()))
        open_day = profile.cards[c].open_day
        first = max(open_day, min(open_day + 30, end_day - 7))
        drawn.append((int(rng.integers(first, max(first + 1, end_day - 5))), c))
    return [(c, day) for day, c in sorted(drawn)]


def attack_activity(profile: UserProfile, seed: int, end_day: int, genuine: Activity) -> Attacks:
    """The attack rows of one customer and their episodes; the rows' places extend `genuine.places`.

    Episodes on one card never overlap: one starting before the card's new plastic is in use moves to
    NEXT_EPISODE_DAYS after it, or is dropped if that is past the end (the first one never is).
    """
    rng = user_rng(seed, profile.user, Stream.ATTACKS)
    cat = catalogue()
    visited = {f"{p.city}|{p.state}" for p in genuine.places}
    places = list(genuine.places)
    risky = np.flatnonzero(cat.group == cat.group_index("high_risk"))
    everyday = ("retail", "dining", "travel", "fuel_transport", "entertainment", "grocery")
    other = np.flatnonzero(np.isin(cat.group, [cat.group_index(g) for g in everyday]))
    hour_p = PERSONAS[profile.persona].hour_probabilities()
    last_second = end_day * 86400 + 86399

    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("card", "ts", "amount", "channel", "mcc", "place", "rank", "online", "episode")
    }
    episodes: list[Episode] = []
    in_use_again: dict[int, int] = {}  # card -> first day its latest new plastic is in use
    for c, drawn_day in _episode_starts(rng, profile, end_day):
        start_day = max(drawn_day, in_use_again.get(c, drawn_day - NEXT_EPISODE_DAYS) + NEXT_EPISODE_DAYS)
        if start_day > end_day - 6:
            continue
        e = len(episodes)
        n = min(3 + int(rng.poisson(BURST_EXTRA_MEAN)), MAX_BURST)
        hour = rng.choice(_ODD_HOURS) if rng.random() < ODD_HOUR_SHARE else rng.choice(24, p=hour_p)
        gaps = np.where(
            rng.random(n) < RESUME_SHARE,
            rng.integers(20, 48, size=n) * 3600,
            rng.exponential(BURST_GAP_S, size=n).astype(np.int64),
        )
        gaps[0] = 0
        start = start_day * 86400 + int(hour) * 3600 + int(rng.integers(0, 60)) * 60
        ts = np.minimum(start + np.cumsum(gaps) // 60 * 60, min(start + MAX_SPAN_S, last_second))
        episode_online = rng.random() < attack_online_share(day_year(np.array(start_day)))
        online = np.where(rng.random(n) < 0.85, episode_online, ~episode_online)
        if not online.all():
            places.append(_never_visited_place(rng, profile, visited))
        place = np.where(online, ONLINE_PLACE, len(places) - 1)
        mcc = np.where(rng.random(n) < HIGH_RISK_SHARE, rng.choice(risky, size=n), rng.choice(other, size=n))
        group = cat.group[mcc]
        amount = np.round(
            np.exp(
                np.log(cat.group_median[group])
                + AMOUNT_LOG_LIFT
                + cat.group_sigma[group] * rng.standard_normal(n)
            )
            * 100
        )
        chip_day = profile.cards[c].chip_day
        channel = np.where(
            online,
            ONLINE,
            np.where(chip_day is not None and start_day >= chip_day and rng.random() < 0.3, CHIP, SWIPE),
        )
        size = np.where(online, ONLINE_MERCHANTS_PER_CATEGORY, MERCHANTS_PER_CATEGORY)
        rank = rng.integers(0, 1 << 30, size=n) % size
        if rng.random() < REVERSAL_SHARE:  # the thief (or the merchant) reverses one purchase
            j = int(rng.integers(n))
            back = min(int(ts[-1] + rng.integers(1, 4 * 86400)), last_second)
            ts, amount = np.append(ts, back), np.append(amount, -amount[j])
            online, place, mcc = (
                np.append(online, online[j]),
                np.append(place, place[j]),
                np.append(mcc, mcc[j]),
            )
            channel, rank = np.append(channel, channel[j]), np.append(rank, rank[j])
        m = len(ts)
        for key, value in (
            ("card", np.full(m, c)),
            ("ts", ts),
            ("amount", amount),
            ("channel", channel),
            ("mcc", mcc),
            ("place", place),
            ("rank", rank),
            ("online", online),
            ("episode", np.full(m, episode_id(profile.user, e))),
        ):
            cols[key].append(value)
        blocked = int(ts.max()) + int(rng.integers(*BLOCK_DELAY_S))
        reissued = (blocked // 86400 + int(rng.integers(*REISSUE_DAYS))) * 86400
        in_use_again[c] = reissued // 86400
        episodes.append(
            Episode(episode_id(profile.user, e), c, int(ts.min()), int(ts.max()), blocked, reissued)
        )

    online = np.concatenate(cols["online"]).astype(bool)
    activity = Activity(
        card=np.concatenate(cols["card"]).astype(np.int8),
        ts=np.concatenate(cols["ts"]).astype(np.int64),
        amount_cents=np.maximum(np.abs(np.concatenate(cols["amount"])), 1).astype(np.int64)
        * np.sign(np.concatenate(cols["amount"]) + 0.5).astype(np.int64),
        channel=np.concatenate(cols["channel"]).astype(np.int8),
        mcc_index=np.concatenate(cols["mcc"]).astype(np.int16),
        place=np.concatenate(cols["place"]).astype(np.int32),
        rank=np.concatenate(cols["rank"]).astype(np.int16),
        error_combo=draw_errors(rng, online, _ERROR_P_IN_PERSON, _ERROR_P_ONLINE),
        episode=np.concatenate(cols["episode"]).astype(np.int64),
        places=places,
    )
    return Attacks(activity, episodes)
