"""The latent customer segments. They shape behaviour and are written only to the ground truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cdp.synth.mcc import GROUP_NAMES


@dataclass(frozen=True)
class Persona:
    """Behavioural parameters of one segment."""

    name: str
    share: float  # share of customers
    age_range: tuple[int, int]  # age as of early 2020
    income_factor: float  # yearly income ~ 2 x zip per-capita income x this
    spend_mix: dict[str, float]  # weight per MCC group (missing groups get 0)
    online_share: float  # share of online purchases once e-commerce is mature (2015+)
    amount_log_scale: float  # log multiplier of every amount
    daily_rate: float  # median purchases per day
    trips_per_year: float
    foreign_trip_share: float
    peak_hours: tuple[tuple[float, float, float], ...]  # (hour, width, weight) bumps of the daily cycle

    def group_weights(self) -> np.ndarray:
        w = np.array([self.spend_mix.get(g, 0.0) for g in GROUP_NAMES])
        return w / w.sum()

    def hour_probabilities(self) -> np.ndarray:
        """P(hour of day) for this persona's purchases (24 values, sum 1)."""
        hours = np.arange(24) + 0.5
        p = np.full(24, 0.004)
        for centre, width, weight in self.peak_hours:
            d = np.minimum(np.abs(hours - centre), 24 - np.abs(hours - centre))
            p += weight * np.exp(-0.5 * (d / width) ** 2)
        return p / p.sum()


PERSONAS: tuple[Persona, ...] = (
    Persona(
        name="young_digital",
        share=0.22,
        age_range=(22, 36),
        income_factor=1.0,
        spend_mix={
            "grocery": 10,
            "dining": 22,
            "fuel_transport": 12,
            "retail": 14,
            "high_risk": 9,
            "travel": 2,
            "health": 2,
            "services": 8,
            "entertainment": 21,
        },
        online_share=0.34,
        amount_log_scale=-0.15,
        daily_rate=2.6,
        trips_per_year=1.0,
        foreign_trip_share=0.15,
        peak_hours=((13.0, 1.5, 0.6), (20.5, 2.5, 1.0)),
    ),
    Persona(
        name="family_shopper",
        share=0.28,
        age_range=(33, 52),
        income_factor=1.05,
        spend_mix={
            "grocery": 36,
            "dining": 9,
            "fuel_transport": 16,
            "retail": 22,
            "high_risk": 1,
            "travel": 1,
            "health": 6,
            "services": 7,
            "entertainment": 2,
        },
        online_share=0.10,
        amount_log_scale=0.25,
        daily_rate=3.45,
        trips_per_year=0.5,
        foreign_trip_share=0.05,
        peak_hours=((9.5, 1.5, 0.6), (17.5, 2.0, 1.0)),
    ),
    Persona(
        name="affluent_traveller",
        share=0.14,
        age_range=(40, 66),
        income_factor=2.2,
        spend_mix={
            "grocery": 10,
            "dining": 24,
            "fuel_transport": 10,
            "retail": 14,
            "high_risk": 2,
            "travel": 22,
            "health": 6,
            "services": 9,
            "entertainment": 3,
        },
        online_share=0.10,
        amount_log_scale=0.6,
        daily_rate=2.05,
        trips_per_year=2.5,
        foreign_trip_share=0.40,
        peak_hours=((12.5, 1.5, 0.8), (19.5, 1.8, 0.8)),
    ),
    Persona(
        name="retiree_local",
        share=0.20,
        age_range=(66, 92),
        income_factor=0.75,
        spend_mix={
            "grocery": 32,
            "dining": 8,
            "fuel_transport": 8,
            "retail": 10,
            "high_risk": 0.5,
            "travel": 1,
            "health": 28,
            "services": 12,
            "entertainment": 1,
        },
        online_share=0.03,
        amount_log_scale=0.0,
        daily_rate=1.6,
        trips_per_year=0.3,
        foreign_trip_share=0.05,
        peak_hours=((10.0, 1.6, 1.0), (14.0, 1.5, 0.7)),
    ),
    Persona(
        name="budget_student",
        share=0.16,
        age_range=(20, 28),
        income_factor=0.5,
        spend_mix={
            "grocery": 12,
            "dining": 30,
            "fuel_transport": 22,
            "retail": 8,
            "high_risk": 5,
            "travel": 1,
            "health": 1,
            "services": 5,
            "entertainment": 16,
        },
        online_share=0.25,
        amount_log_scale=-0.65,
        daily_rate=3.1,
        trips_per_year=0.4,
        foreign_trip_share=0.10,
        peak_hours=((15.0, 2.0, 0.6), (22.5, 1.8, 1.0)),
    ),
)

PERSONA_NAMES: tuple[str, ...] = tuple(p.name for p in PERSONAS)
PERSONA_SHARES = np.array([p.share for p in PERSONAS]) / sum(p.share for p in PERSONAS)
