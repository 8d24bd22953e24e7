"""Per-event columns derived from one lake transaction row, each written once for SQL and once for Python.

Every feature is built on these. The two forms of a column must agree on every row (including nulls);
the parity test holds them to it. The SQL form reads the lake's `transactions` table; the Python form reads
the same row as a dict (the stream's record, `cdp.streaming.records.decode`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from features.mcc import mcc_group, mcc_group_sql

Row = Mapping[str, Any]
Kind = Literal["int", "bool", "str"]

# Categories card thieves favour (money transfer, electronics, digital goods, jewellery, gambling...): the
# high-risk group of the synthetic generator's catalogue (`cdp.synth.mcc`), which a test holds equal.
HIGH_RISK_MCCS: tuple[int, ...] = (
    4829, 5045, 5094, 5732, 5733, 5734, 5815, 5816, 5817, 5818, 5944, 6051, 7995,
)  # fmt: skip
_HIGH_RISK = frozenset(HIGH_RISK_MCCS)

_EPOCH = datetime(1970, 1, 1)
_ONE_SECOND = datetime(1970, 1, 1, 0, 0, 1) - _EPOCH


def epoch_seconds(ts: datetime) -> int:
    """Seconds since 1970-01-01 of a naive lake timestamp."""
    return (ts - _EPOCH) // _ONE_SECOND


@dataclass(frozen=True)
class RowColumn:
    """One derived column: its SQL expression over `transactions` and the same value from a row dict."""

    name: str
    kind: Kind
    sql: str
    value: Callable[[Row], Any]
    doc: str

    @property
    def row_field(self) -> str | None:
        """The row field this column is a plain copy of in Python (the online path inlines it), or None."""
        return getattr(self.value, "field", None)


class _Field:
    """`row[name]` as a callable that says which field it reads."""

    def __init__(self, name: str) -> None:
        self.field = name

    def __call__(self, r: Row) -> Any:
        return r[self.field]


def _city_key(r: Row) -> str | None:
    if r["channel"] == "online" or r["merchant_city"] is None:
        return None
    return f"{r['merchant_city']}|{r['merchant_state'] or ''}"


def _errors(r: Row) -> str:
    return ",".join(r["errors"] or ())


COLUMNS: dict[str, RowColumn] = {
    c.name: c
    for c in (
        RowColumn("amount_cents", "int", "amount_cents", _Field("amount_cents"), "amount in cents"),
        RowColumn("channel", "str", "channel", _Field("channel"), "swipe, chip or online"),
        RowColumn("merchant_id", "int", "merchant_id", _Field("merchant_id"), "merchant hash"),
        RowColumn("mcc", "int", "CAST(mcc AS INTEGER)", _Field("mcc"), "merchant category code"),
        RowColumn(
            "merchant_state", "str", "merchant_state", _Field("merchant_state"),
            "US state code or country name; null online",
        ),
        RowColumn(
            "city_key", "str",
            "CASE WHEN channel = 'online' THEN NULL "
            "ELSE merchant_city || '|' || coalesce(merchant_state, '') END",
            _city_key, "merchant city and state (null for online)",
        ),
        RowColumn(
            "hour_of_day", "int", "CAST(hour(ts) AS INTEGER)", lambda r: r["ts"].hour, "hour of the event"
        ),
        RowColumn("is_online", "bool", "channel = 'online'", lambda r: r["channel"] == "online", "online"),
        RowColumn(
            "is_foreign", "bool", "coalesce(length(merchant_state) > 2, false)",
            lambda r: r["merchant_state"] is not None and len(r["merchant_state"]) > 2,
            "merchant outside the US (state column holds a country name)",
        ),
        RowColumn("is_refund", "bool", "amount_cents < 0", lambda r: r["amount_cents"] < 0, "refund"),
        RowColumn(
            "is_purchase", "bool", "amount_cents > 0", lambda r: r["amount_cents"] > 0,
            "a purchase (positive amount)",
        ),
        RowColumn("card_token", "str", "card_token", _Field("card_token"), "the card's token"),
        RowColumn(
            "has_error", "bool", "coalesce(array_length(errors), 0) > 0", lambda r: bool(r["errors"]),
            "the authorisation reported an error",
        ),
        RowColumn(
            "has_bad_credential", "bool", "coalesce(array_to_string(errors, ','), '') LIKE '%Bad %'",
            lambda r: "Bad " in _errors(r), "bad CVV, card number, expiry, PIN or zip code",
        ),
        RowColumn("mcc_group", "str", mcc_group_sql("mcc"), lambda r: mcc_group(r["mcc"]), "spending group"),
        RowColumn(
            "is_high_risk_mcc", "bool",
            f"coalesce(CAST(mcc AS INTEGER) IN ({', '.join(map(str, HIGH_RISK_MCCS))}), false)",
            lambda r: r["mcc"] is not None and int(r["mcc"]) in _HIGH_RISK,
            "a category card thieves favour",
        ),
    )
}  # fmt: skip
