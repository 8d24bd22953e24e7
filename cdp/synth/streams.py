"""Independent random streams per user, so output never depends on how users are split across workers."""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Stream(IntEnum):
    """What a stream is used for: each purpose draws from its own sequence."""

    PROFILE = 0
    ACTIVITY = 1
    ATTACKS = 2
    LABELS = 3
    CALENDAR = 4
    BLOCKS = 5


def user_rng(seed: int, user: int, stream: Stream) -> np.random.Generator:
    """The generator of one user's stream (SeedSequence keyed by seed, user and purpose)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(user, int(stream))))


def global_rng(seed: int, stream: Stream) -> np.random.Generator:
    """A stream that belongs to the whole data set (e.g. which months lack labels)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31, int(stream))))


def faker_seed(seed: int, user: int) -> int:
    """An integer seed for Faker, derived from the user's profile stream."""
    return int(np.random.SeedSequence(seed, spawn_key=(user, int(Stream.PROFILE), 1)).generate_state(1)[0])
