"""Customers and their cards: the public profile rows (with PII) and the latent parameters behind them.

Faker (seeded per user) supplies names, streets and e-mails; homes are real US zip codes. The latent
`UserProfile` carries everything transaction generation needs and never leaves the generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pyarrow as pa

from cdp.ibm.schema import CARD_BRANDS, CARD_TYPES, CARDS_SCHEMA, USERS_SCHEMA
from cdp.synth.luhn import luhn_check_digit
from cdp.synth.mcc import catalogue
from cdp.synth.personas import PERSONA_SHARES, PERSONAS
from cdp.synth.reference import reference
from cdp.synth.streams import Stream, faker_seed, global_rng, user_rng

EPOCH = date(1970, 1, 1)
SNAPSHOT = date(2020, 2, 28)  # the public users file is a snapshot "as of now"

CARD_COUNT_P = np.array([0.17, 0.24, 0.24, 0.16, 0.09, 0.05, 0.03, 0.014, 0.006])  # 1..9 cards, mean ~3.1
BRAND_P = np.array([0.522, 0.378, 0.065, 0.035])  # CARD_BRANDS order
TYPE_P = np.array([0.571, 0.335, 0.094])  # CARD_TYPES order
HAS_CHIP_P = 0.89
MCC_SUBSET = (12, 26)  # how many distinct categories a customer uses
CHIP_ROLLOUT = (date(2015, 7, 1), date(2017, 6, 30))  # a chip card starts being read as chip in this span
# The card file shows each account's current plastic: renewed every few years (and re-issued after a fraud
# block), so at the snapshot it expires 1..EXPIRY_MONTHS_AHEAD months after the last month of data.
EXPIRY_MONTHS_AHEAD = 58
_BRAND_PREFIXES = {
    "Mastercard": ("51", "52", "53", "54", "55"),
    "Visa": ("4",),
    "Amex": ("34", "37"),
    "Discover": ("6011", "65"),
}


def day_number(d: date) -> int:
    """Days since 1970-01-01."""
    return (d - EPOCH).days


def from_day_number(n: int) -> date:
    return EPOCH + timedelta(days=int(n))


@dataclass(frozen=True)
class CardProfile:
    index: int
    open_day: int  # first day the card can transact
    weight: float  # share of the user's purchases while every card is open
    chip_day: int | None  # first day purchases in person are read by chip (None: no chip)
    expires: date  # first day of the current plastic's expiry month (after the last month of data)

    @property
    def open_month(self) -> date:
        """The `Acct Open Date` month: no purchase on the card before its first day."""
        return _month_start(self.open_day)


@dataclass(frozen=True)
class UserProfile:
    """Latent parameters of one customer (ground truth only)."""

    user: int
    persona: int  # index into PERSONAS
    home_zip: str
    home_city: str
    home_state: str
    amount_log_scale: float
    rate_level: float  # purchases per day at the change point
    slope_before: float  # log-rate change per year before the change point
    slope_after: float  # log-rate change per year after it
    change_day: int
    cards: tuple[CardProfile, ...]
    mcc_weights: tuple[float, ...]  # P(each catalogue code) for this customer: a persona mix over a subset

    def mcc_probabilities(self) -> np.ndarray:
        return np.asarray(self.mcc_weights)

    @property
    def start_day(self) -> int:
        return min(c.open_day for c in self.cards)

    def daily_rate(self, days: np.ndarray) -> np.ndarray:
        """Expected purchases per day on each day (0 before the first card opens)."""
        years = (days - self.change_day) / 365.25
        slope = np.where(years < 0, self.slope_before, self.slope_after)
        rate = self.rate_level * np.exp(slope * years)
        return np.where(days >= self.start_day, rate, 0.0)


@dataclass(frozen=True)
class UserRecord:
    """The public rows of one customer: users-file row, card rows and the bank's contact e-mail."""

    user_row: dict
    card_rows: list[dict]
    email: str


@lru_cache(maxsize=1)
def _faker():
    from faker import Faker

    return Faker("en_US")


def _card_number(rng: np.random.Generator, brand: str) -> str:
    prefix = _BRAND_PREFIXES[brand][rng.integers(len(_BRAND_PREFIXES[brand]))]
    length = 15 if brand == "Amex" else 16
    body = prefix + "".join(str(d) for d in rng.integers(0, 10, size=length - 1 - len(prefix)))
    return body + luhn_check_digit(body)


def _month_start(day: int) -> date:
    d = from_day_number(day)
    return date(d.year, d.month, 1)


def _personal_mcc_weights(rng: np.random.Generator, group_weights: np.ndarray) -> np.ndarray:
    """A customer buys in a personal subset of the persona's categories (which bounds their merchants)."""
    base = catalogue().code_weights(group_weights)
    size = min(int(rng.integers(MCC_SUBSET[0], MCC_SUBSET[1] + 1)), int((base > 0).sum()))
    chosen = rng.choice(len(base), size=size, replace=False, p=base)
    w = np.zeros_like(base)
    w[chosen] = base[chosen]
    return w / w.sum()


def _months_after(month: date, months: int) -> date:
    """First day of the month `months` after `month`'s."""
    k = month.year * 12 + month.month - 1 + months
    return date(k // 12, k % 12 + 1, 1)


def make_user(
    seed: int, user: int, start: date, clv_cutoff: date, end: date = SNAPSHOT
) -> tuple[UserProfile, UserRecord]:
    """Draw one customer: latent profile and public rows (deterministic in seed and user id).

    Every card's life (`Acct Open Date` month .. `Expires` month) covers the data's span from its opening
    to `end`: the current plastic expires after `end`'s month.

    Card brand, type, number and limit are left blank here: `assign_brands_and_types` deals them.
    """
    rng = user_rng(seed, user, Stream.PROFILE)
    ref = reference()
    persona_index = int(rng.choice(len(PERSONAS), p=PERSONA_SHARES))
    persona = PERSONAS[persona_index]

    z = int(rng.integers(len(ref.zip_codes)))
    zip5, city, state = str(ref.zip_codes[z]), str(ref.zip_city[z]), str(ref.zip_state[z])
    age = int(rng.integers(persona.age_range[0], persona.age_range[1] + 1))
    birth_month = int(rng.integers(1, 13))
    birth_year = SNAPSHOT.year - age - (1 if birth_month > SNAPSHOT.month else 0)

    # history: first card opens after the 18th birthday; every card is open well before the CLV cut-off
    # (a short history, e.g. start close to the cut-off, squeezes these bounds but never crosses `start`)
    last_allowed = max(day_number(start), day_number(clv_cutoff) - 300)
    adult = day_number(date(birth_year + 18, birth_month, 1))
    first_allowed = max(day_number(start), min(adult, last_allowed - 365))
    start_day = first_allowed + int(max(last_allowed - first_allowed, 0) * rng.beta(1.1, 1.6))
    n_cards = int(rng.choice(9, p=CARD_COUNT_P / CARD_COUNT_P.sum())) + 1
    open_days = [start_day] + sorted(
        int(d) for d in rng.integers(start_day, max(last_allowed, start_day + 1), size=n_cards - 1)
    )
    weights = rng.dirichlet(np.full(n_cards, 1.2))
    has_chip = rng.random(n_cards) < HAS_CHIP_P
    rollout = rng.integers(day_number(CHIP_ROLLOUT[0]), day_number(CHIP_ROLLOUT[1]), size=n_cards)
    plastics = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(user, int(Stream.PROFILE), 3)))
    ahead = plastics.integers(1, EXPIRY_MONTHS_AHEAD + 1, size=n_cards)
    end_month = date(end.year, end.month, 1)
    cards = tuple(
        CardProfile(
            i,
            open_days[i],
            float(weights[i]),
            int(max(rollout[i], open_days[i])) if has_chip[i] else None,
            _months_after(end_month, int(ahead[i])),
        )
        for i in range(n_cards)
    )
    profile = UserProfile(
        user=user,
        persona=persona_index,
        home_zip=zip5,
        home_city=city,
        home_state=state,
        amount_log_scale=persona.amount_log_scale + float(rng.normal(0, 0.25)),
        rate_level=persona.daily_rate * float(rng.lognormal(0, 0.45)),
        slope_before=float(rng.normal(0.04, 0.04)),
        slope_after=float(np.clip(rng.normal(0, 0.3), -0.6, 0.6)),
        change_day=int(rng.integers(day_number(date(2015, 1, 1)), day_number(date(2018, 7, 1)))),
        cards=cards,
        mcc_weights=tuple(_personal_mcc_weights(rng, persona.group_weights())),
    )

    # public profile
    fake = _faker()
    fake.seed_instance(faker_seed(seed, user))
    gender = "Female" if rng.random() < 0.51 else "Male"
    first = fake.first_name_female() if gender == "Female" else fake.first_name_male()
    last = fake.last_name()
    per_capita = ref.per_capita_income(zip5)
    income = int(round(2 * per_capita * persona.income_factor * rng.lognormal(0, 0.22)))
    user_row = {
        "line": user + 2,
        "user": user,
        "person": f"{first} {last}",
        "current_age": age,
        "retirement_age": int(np.clip(round(rng.normal(66.5, 3)), 50, 79)),
        "birth_year": birth_year,
        "birth_month": birth_month,
        "gender": gender,
        "address": fake.street_address().split(" Apt.")[0].split(" Suite")[0],
        "apartment": str(int(rng.integers(1, 40))) if rng.random() < 0.27 else None,
        "city": city,
        "state": state,
        "zipcode": zip5,
        "latitude": round(float(ref.zip_lat[z]), 2),
        "longitude": round(float(ref.zip_long[z]), 2),
        "per_capita_income": per_capita,
        "yearly_income": income,
        "total_debt": int(round(income * rng.gamma(1.2, 0.9))) if rng.random() > 0.07 else 0,
        "fico_score": int(np.clip(round(rng.normal(712, 65)), 480, 850)),
        "num_credit_cards": n_cards,
    }
    card_rows = []
    for c in cards:
        opened = c.open_month
        card_rows.append(
            {
                "line": 0,  # set when the cards file is assembled
                "user": user,
                "card_index": c.index,
                "card_brand": "",  # brand, type, number and limit: see assign_brands_and_types
                "card_type": "",
                "card_number": "",
                "expires": c.expires,
                "cvv": f"{int(rng.integers(0, 1000)):03d}",
                "has_chip": c.chip_day is not None,
                "cards_issued": int(rng.choice(3, p=[0.5, 0.42, 0.08])) + 1,
                "credit_limit": 0,
                "acct_open_date": opened,
                "year_pin_last_changed": int(rng.integers(max(opened.year, 2002), 2021)),
                "card_on_dark_web": False,
            }
        )
    handle = f"{first}.{last}".lower().replace(" ", "").replace("'", "")
    email = f"{handle}{int(rng.integers(1, 100))}@{fake.free_email_domain()}"
    return profile, UserRecord(user_row, card_rows, email)


def _quota(total: int, shares: np.ndarray) -> np.ndarray:
    """Counts per category summing to `total`, as close to `shares` as whole numbers allow."""
    exact = total * shares / shares.sum()
    counts = np.floor(exact).astype(int)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - counts.sum()]] += 1
    return counts


def assign_brands_and_types(records: list[UserRecord], seed: int) -> None:
    """Give every card its brand, type, number and limit; shares match the real file at any scale.

    Brands and types are dealt from shuffled quotas over all cards (so even 100 customers get the real
    mix), then each card draws its number and limit from its own stream.
    """
    rows = [row for r in records for row in r.card_rows]
    rng = global_rng(seed, Stream.PROFILE)
    brands = rng.permutation(np.repeat(np.arange(len(CARD_BRANDS)), _quota(len(rows), BRAND_P)))
    types = rng.permutation(np.repeat(np.arange(len(CARD_TYPES)), _quota(len(rows), TYPE_P)))
    incomes = {r.user_row["user"]: r.user_row["yearly_income"] for r in records}
    for row, b, t in zip(rows, brands, types, strict=True):
        card_rng = np.random.default_rng(
            np.random.SeedSequence(seed, spawn_key=(row["user"], int(Stream.PROFILE), 2, row["card_index"]))
        )
        row["card_brand"], row["card_type"] = CARD_BRANDS[b], CARD_TYPES[t]
        row["card_number"] = _card_number(card_rng, row["card_brand"])
        if row["card_type"] == "Debit (Prepaid)":
            row["credit_limit"] = int(card_rng.integers(1, 12)) * 50
        else:
            factor = 1.3 if row["card_type"] == "Credit" else 0.6
            income = incomes[row["user"]]
            row["credit_limit"] = int(round(income * card_rng.uniform(0.1, 0.5) * factor, -2))


def users_table(records: list[UserRecord]) -> pa.Table:
    """USERS_SCHEMA rows in user order."""
    return pa.Table.from_pylist([r.user_row for r in records], schema=USERS_SCHEMA)


def cards_table(records: list[UserRecord]) -> pa.Table:
    """CARDS_SCHEMA rows in user, card order with their file line numbers."""
    rows = [row for r in records for row in r.card_rows]
    for i, row in enumerate(rows):
        row["line"] = i + 2
    return pa.Table.from_pylist(rows, schema=CARDS_SCHEMA)
