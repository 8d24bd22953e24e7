"""Blocked cards: after a fraud episode the card is blocked until its new plastic arrives.

The new plastic belongs to the same account, so in the files it keeps the card index (the cards file
shows the current plastic). While it is in the mail the cardholder pays with another of their open cards
(by their usual card weights), or does without when they have none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from cdp.synth.activity import CHIP, ONLINE, SWIPE, Activity
from cdp.synth.attacks import Episode
from cdp.synth.people import UserProfile


def blocked_rows(card: np.ndarray, ts: np.ndarray, episodes: Sequence[Episode]) -> np.ndarray:
    """Per row: is its card blocked at its time (between an episode's block and the new plastic)?"""
    blocked = np.zeros(len(ts), dtype=bool)
    for e in episodes:
        blocked |= (card == e.card) & (ts >= e.blocked_ts) & (ts < e.reissued_ts)
    return blocked


def reroute_blocked(
    genuine: Activity, profile: UserProfile, episodes: Sequence[Episode], rng: np.random.Generator
) -> Activity:
    """The cardholder's purchases with every blocked one moved to another usable card, or dropped."""
    moved = np.flatnonzero(blocked_rows(genuine.card, genuine.ts, episodes))
    if not len(moved):
        return genuine
    ts = genuine.ts[moved]
    day = ts // 86400
    n_cards = len(profile.cards)
    open_day = np.array([c.open_day for c in profile.cards])
    weight = np.array([c.weight for c in profile.cards])
    usable = day[:, None] >= open_day[None, :]
    for c in range(n_cards):
        usable[:, c] &= ~blocked_rows(np.full(len(moved), c), ts, episodes)
    cum = np.cumsum(usable * weight[None, :], axis=1)
    has_card = cum[:, -1] > 0
    pick = (cum < (rng.random(len(moved)) * cum[:, -1])[:, None]).sum(axis=1)

    card = genuine.card.copy()
    card[moved] = pick
    chip_day = np.array(
        [c.chip_day if c.chip_day is not None else np.iinfo(np.int64).max for c in profile.cards]
    )
    in_person = genuine.channel[moved] != ONLINE
    channel = genuine.channel.copy()
    channel[moved] = np.where(in_person, np.where(day >= chip_day[pick], CHIP, SWIPE), ONLINE)
    rerouted = replace(genuine, card=card, channel=channel)
    keep = np.ones(len(genuine), dtype=bool)
    keep[moved[~has_card]] = False
    return rerouted if keep.all() else rerouted.take(np.flatnonzero(keep))
