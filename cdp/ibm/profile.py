"""A profile of IBM-format files, read through the validating reader, and realism checks against the
published facts of the real data set (see the data format notes).

Transactions are streamed chunk by chunk into running tallies, so memory stays bounded at full scale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rich.console import Console
from rich.table import Table

from cdp.ibm.card_life import CardLives, flag_outside
from cdp.ibm.quarantine import Quarantine
from cdp.ibm.reader import card_keys, iter_transactions, read_cards, read_users
from cdp.ibm.schema import CARD_BRANDS, CARD_TYPES, CHANNELS

TOP_REASONS = 5
# A month "has volume" when it holds at least this share of the median month's transactions.
VOLUME_SHARE_OF_MEDIAN = 0.5
_FIRST_YEAR, _LAST_YEAR = 1900, 2100
_EPOCH = datetime(1970, 1, 1)
_MONTHS = (_LAST_YEAR - _FIRST_YEAR + 1) * 12


@dataclass
class FileCounts:
    """Rows of one source file and its most frequent quarantine reasons."""

    file: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int
    top_reasons: list[tuple[str, int]]


@dataclass
class Profile:
    """What the files hold. Shares and rates are percentages; absent files leave their fields None."""

    files: list[FileCounts] = field(default_factory=list)
    users: int | None = None
    cards: int | None = None
    cards_per_user: dict[str, float] | None = None  # min, mean, max
    brand_shares: dict[str, float] | None = None
    type_shares: dict[str, float] | None = None
    transactions: int | None = None
    frauds: int | None = None
    fraud_rate: float | None = None
    channel_shares: dict[str, float] | None = None
    error_rows: int | None = None
    error_row_rate: float | None = None
    distinct_mccs: int | None = None
    distinct_merchants: int | None = None
    reversals: int | None = None
    first_transaction: str | None = None
    last_transaction: str | None = None
    months_without_fraud: list[str] | None = None  # months with volume but no fraud label
    # rows dated before their card's Acct Open Date month or after its Expires month (cards file needed)
    rows_outside_card_life: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict of every figure."""
        data = asdict(self)
        data["months_without_fraud_count"] = (
            len(self.months_without_fraud) if self.months_without_fraud is not None else None
        )
        return data

    def render(self, console: Console) -> None:
        """Print the profile as rich tables."""
        files = Table(title="Source files")
        for name in ("file", "read", "accepted", "quarantined", "top reasons"):
            files.add_column(name, justify="right" if name in ("read", "accepted", "quarantined") else "left")
        for f in self.files:
            reasons = "\n".join(f"{count:,} × {reason}" for reason, count in f.top_reasons) or "-"
            files.add_row(
                f.file, f"{f.rows_read:,}", f"{f.rows_accepted:,}", f"{f.rows_quarantined:,}", reasons
            )
        console.print(files)

        summary = Table(title="Profile")
        summary.add_column("measure")
        summary.add_column("value", justify="right")
        for name, value in self._summary_rows():
            summary.add_row(name, value)
        console.print(summary)

        for title, shares in (
            ("Channels", self.channel_shares),
            ("Card brands", self.brand_shares),
            ("Card types", self.type_shares),
        ):
            if shares:
                table = Table(title=f"{title} (%)")
                table.add_column("value")
                table.add_column("share %", justify="right")
                for key, share in shares.items():
                    table.add_row(key, f"{share:.1f}")
                console.print(table)

    def _summary_rows(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []

        def add(name: str, value: Any, fmt: str = "{:,}") -> None:
            if value is not None:
                rows.append((name, fmt.format(value)))

        add("users", self.users)
        add("cards", self.cards)
        if self.cards_per_user:
            c = self.cards_per_user
            rows.append(
                ("cards per user (min/mean/max)", f"{c['min']:.0f} / {c['mean']:.2f} / {c['max']:.0f}")
            )
        add("transactions", self.transactions)
        add("frauds", self.frauds)
        add("fraud rate %", self.fraud_rate, "{:.3f}")
        add("rows with errors", self.error_rows)
        add("error-row rate %", self.error_row_rate, "{:.2f}")
        add("distinct MCCs", self.distinct_mccs)
        add("distinct merchants", self.distinct_merchants)
        add("reversals (negative amounts)", self.reversals)
        add("rows outside their card's open..expiry months", self.rows_outside_card_life)
        if self.first_transaction:
            rows.append(("date range", f"{self.first_transaction} .. {self.last_transaction}"))
        if self.months_without_fraud is not None:
            months = self.months_without_fraud
            shown = ", ".join(months[:6]) + (" ..." if len(months) > 6 else "")
            rows.append(("months with volume, no fraud", f"{len(months)} {shown}".strip()))
        return rows


def _shares(counts: Counter[str], order: tuple[str, ...]) -> dict[str, float]:
    total = sum(counts.values())
    keys = [k for k in order if k in counts] + sorted(k for k in counts if k not in order)
    return {k: 100.0 * counts[k] / total for k in keys} if total else {}


def _counts(values: pa.ChunkedArray | pa.Array) -> Counter[str]:
    vc = pc.value_counts(values)
    return Counter({str(v["values"]): int(v["counts"]) for v in vc.to_pylist()})


class _TransactionTally:
    """Running totals over transaction chunks."""

    def __init__(self, card_lives: CardLives | None = None) -> None:
        self.card_lives = card_lives
        self.outside_card_life = 0
        self.rows = 0
        self.frauds = 0
        self.error_rows = 0
        self.reversals = 0
        self.channels: Counter[str] = Counter()
        self.mccs: set[int] = set()
        self.merchants: set[int] = set()
        self.first: int | None = None
        self.last: int | None = None
        self.month_rows = np.zeros(_MONTHS, dtype=np.int64)
        self.month_frauds = np.zeros(_MONTHS, dtype=np.int64)

    def add(self, chunk: pa.Table, file: str, quarantine: Quarantine) -> None:
        """Tally a chunk of `file`'s accepted rows; rows outside their card's life are flagged."""
        self.rows += chunk.num_rows
        fraud = chunk.column("is_fraud")
        self.frauds += int(pc.sum(fraud).as_py() or 0)
        self.error_rows += int(
            pc.sum(pc.greater(pc.list_value_length(chunk.column("errors")), 0)).as_py() or 0
        )
        self.reversals += int(pc.sum(pc.less(chunk.column("amount_cents"), 0)).as_py() or 0)
        self.channels.update(_counts(chunk.column("channel")))
        self.mccs.update(pc.unique(chunk.column("mcc")).to_pylist())
        self.merchants.update(pc.unique(chunk.column("merchant_id")).to_pylist())
        ts = chunk.column("ts")
        low, high = pc.min_max(ts.cast(pa.int64())).values()
        self.first = low.as_py() if self.first is None else min(self.first, low.as_py())
        self.last = high.as_py() if self.last is None else max(self.last, high.as_py())
        month = (pc.year(ts).to_numpy() - _FIRST_YEAR) * 12 + pc.month(ts).to_numpy() - 1
        self.month_rows += np.bincount(month, minlength=_MONTHS)
        if self.card_lives is not None:
            self.outside_card_life += flag_outside(chunk, self.card_lives, file, quarantine)
        self.month_frauds += np.bincount(
            month, weights=fraud.to_numpy().astype(np.int64), minlength=_MONTHS
        ).astype(np.int64)

    def months_without_fraud(self) -> list[str]:
        busy = self.month_rows[self.month_rows > 0]
        if not len(busy):
            return []
        threshold = VOLUME_SHARE_OF_MEDIAN * float(np.median(busy))
        quiet = np.flatnonzero(
            (self.month_rows >= threshold) & (self.month_rows > 0) & (self.month_frauds == 0)
        )
        return [f"{_FIRST_YEAR + m // 12}-{m % 12 + 1:02d}" for m in quiet]

    def fill(self, profile: Profile) -> None:
        profile.transactions = self.rows
        profile.frauds = self.frauds
        profile.fraud_rate = 100.0 * self.frauds / self.rows if self.rows else 0.0
        profile.channel_shares = _shares(self.channels, tuple(CHANNELS.values()))
        profile.error_rows = self.error_rows
        profile.error_row_rate = 100.0 * self.error_rows / self.rows if self.rows else 0.0
        profile.distinct_mccs = len(self.mccs)
        profile.distinct_merchants = len(self.merchants)
        profile.reversals = self.reversals
        if self.first is not None:
            profile.first_transaction = _timestamp_text(self.first)
            profile.last_transaction = _timestamp_text(self.last)
        profile.months_without_fraud = self.months_without_fraud()
        if self.card_lives is not None:
            profile.rows_outside_card_life = self.outside_card_life


def _timestamp_text(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(sep=" ")


def _cards_per_user(cards: pa.Table, users: pa.Table | None) -> dict[str, float] | None:
    per_user = Counter(cards.column("user").to_pylist())
    if users is not None:
        for user in users.column("user").to_pylist():
            per_user.setdefault(user, 0)
    if not per_user:
        return None
    values = np.array(list(per_user.values()))
    return {"min": float(values.min()), "mean": float(values.mean()), "max": float(values.max())}


def profile_files(
    users: Path | None,
    cards: Path | None,
    transactions: Path | Sequence[Path] | None,
    quarantine_dir: Path,
) -> Profile:
    """Validate and profile whichever of the three files are given; rejected rows go to the quarantine,
    transactions outside their card's life are counted and flagged (`cdp.ibm.card_life`).

    `transactions` is one file or several (the per-user files, e.g. `SourceFiles.transactions`).
    """
    profile = Profile()
    with Quarantine(quarantine_dir) as quarantine:
        users_table = read_users(users, quarantine) if users else None
        known_users = set(users_table.column("user").to_pylist()) if users_table is not None else None
        cards_table = read_cards(cards, quarantine, known_users) if cards else None
        if users_table is not None:
            profile.users = users_table.num_rows
        if cards_table is not None:
            profile.cards = cards_table.num_rows
            profile.cards_per_user = _cards_per_user(cards_table, users_table)
            profile.brand_shares = _shares(_counts(cards_table.column("card_brand")), CARD_BRANDS)
            profile.type_shares = _shares(_counts(cards_table.column("card_type")), CARD_TYPES)
        if transactions:
            known_cards = card_keys(cards_table) if cards_table is not None else None
            tally = _TransactionTally(CardLives(cards_table) if cards_table is not None else None)
            for path in [transactions] if isinstance(transactions, (str, Path)) else transactions:
                for chunk in iter_transactions(Path(path), quarantine, known_cards):
                    tally.add(chunk, Path(path).name, quarantine)
            tally.fill(profile)
        for name, stats in quarantine.stats.items():
            reasons = quarantine.reasons_by_file.get(name, Counter()).most_common(TOP_REASONS)
            profile.files.append(
                FileCounts(name, stats.rows_read, stats.rows_accepted, stats.rows_quarantined, reasons)
            )
    return profile


# ---- realism ----------------------------------------------------------------------------------


@dataclass
class Check:
    """One realism check: the measured value, the target it is held to, and whether it passed."""

    name: str
    value: Any
    target: str
    passed: bool


def _near(shares: dict[str, float] | None, key: str, target: float, points: float = 5.0) -> Check:
    value = (shares or {}).get(key, 0.0)
    return Check(f"{key} share %", round(value, 2), f"{target} ± {points}", abs(value - target) <= points)


def realism_checks(profile: Profile) -> list[Check]:
    """Hold a profile to the published shape of the real data; checks of absent files are skipped."""
    checks: list[Check] = []
    if profile.transactions:
        rate = profile.fraud_rate or 0.0
        checks.append(Check("fraud rate %", round(rate, 4), "0.08 .. 0.16", 0.08 <= rate <= 0.16))
        for channel, target in (("swipe", 63.1), ("chip", 25.8), ("online", 11.1)):
            checks.append(_near(profile.channel_shares, channel, target))
        errors = profile.error_row_rate or 0.0
        checks.append(Check("rows with errors %", round(errors, 3), "1.0 .. 2.5", 1.0 <= errors <= 2.5))
        checks.append(
            Check("distinct MCCs", profile.distinct_mccs, ">= 100", (profile.distinct_mccs or 0) >= 100)
        )
        quiet = len(profile.months_without_fraud or [])
        checks.append(Check("months with volume but no fraud", quiet, ">= 1", quiet >= 1))
        checks.append(Check("reversals", profile.reversals, ">= 1", (profile.reversals or 0) >= 1))
        if profile.rows_outside_card_life is not None:  # real files may hold some: reported, never failed
            checks.append(
                Check(
                    "rows outside their card's open..expiry months",
                    profile.rows_outside_card_life,
                    "reported (0 in generated data)",
                    True,
                )
            )
    if profile.cards:
        for brand, target in (("Mastercard", 52.2), ("Visa", 37.8), ("Amex", 6.5), ("Discover", 3.4)):
            checks.append(_near(profile.brand_shares, brand, target))
        for card_type, target in (("Debit", 57.1), ("Credit", 33.5), ("Debit (Prepaid)", 9.4)):
            checks.append(_near(profile.type_shares, card_type, target))
    if profile.cards_per_user:
        c = profile.cards_per_user
        checks.append(
            Check(
                "cards per user (min, max)",
                f"{c['min']:.0f}, {c['max']:.0f}",
                "1 .. 9",
                c["min"] >= 1 and c["max"] <= 9,
            )
        )
        checks.append(
            Check("cards per user (mean)", round(c["mean"], 2), "2.6 .. 3.6", 2.6 <= c["mean"] <= 3.6)
        )
    return checks
