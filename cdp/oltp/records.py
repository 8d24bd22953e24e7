"""The three core-banking record types, their fields, and the checks every adapter applies on the way in.

Fields come from the clean Arrow schemas of the IBM files (`cdp.ibm.schema`), so the store and the files
cannot drift apart. `Entity.normalise` turns an incoming row (a dict from `pyarrow.Table.to_pylist()`,
the generator or the stream) into canonical Python values:

    int -> int, float -> float, string -> str, bool -> bool, date32 -> datetime.date,
    timestamp -> datetime.datetime (naive, as in the files), list<string> -> list[str], null -> None

Error messages name the record type, the source `line` (or the row's position in the batch) and the
field, never a value: rows here carry clear PII.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any

import pyarrow as pa

from cdp.ibm.schema import CARDS_COLUMNS, CARDS_SCHEMA, TRANSACTIONS_SCHEMA, USERS_COLUMNS, USERS_SCHEMA
from cdp.oltp.ids import transaction_id


class Kind(Enum):
    """How a field is typed in Python (and therefore how each adapter stores it)."""

    INT = "int"
    FLOAT = "float"
    STR = "str"
    BOOL = "bool"
    DATE = "date"
    TIMESTAMP = "timestamp"
    STR_LIST = "str_list"


@dataclass(frozen=True)
class Field:
    name: str
    kind: Kind
    pii: bool = False


def _kind_of(arrow_type: pa.DataType) -> Kind:
    if pa.types.is_integer(arrow_type):
        return Kind.INT
    if pa.types.is_floating(arrow_type):
        return Kind.FLOAT
    if pa.types.is_string(arrow_type):
        return Kind.STR
    if pa.types.is_boolean(arrow_type):
        return Kind.BOOL
    if pa.types.is_date(arrow_type):
        return Kind.DATE
    if pa.types.is_timestamp(arrow_type):
        return Kind.TIMESTAMP
    if pa.types.is_list(arrow_type) and pa.types.is_string(arrow_type.value_type):
        return Kind.STR_LIST
    raise TypeError(f"no store kind for Arrow type {arrow_type}")


def fields_from_schema(schema: pa.Schema, pii: Iterable[str] = ()) -> tuple[Field, ...]:
    """One `Field` per schema column, in schema order."""
    pii_names = set(pii)
    return tuple(Field(f.name, _kind_of(f.type), f.name in pii_names) for f in schema)


class RecordError(ValueError):
    """A row the store refuses; the message names record type, line and field, never a value."""


@dataclass(frozen=True)
class Entity:
    """A record type of the store: its fields, its key, and the fields no read may return."""

    name: str
    fields: tuple[Field, ...]
    key: tuple[str, ...]
    secret: frozenset[str] = frozenset()
    required: tuple[str, ...] = ()
    _kinds: dict[str, Kind] = field(init=False, repr=False, compare=False)
    _plan: tuple[tuple[str, type | None, Any, Kind], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_kinds", {f.name: f.kind for f in self.fields})
        plan = tuple((f.name, _EXACT.get(f.kind), _COERCE[f.kind], f.kind) for f in self.fields)
        object.__setattr__(self, "_plan", plan)

    @property
    def names(self) -> tuple[str, ...]:
        """Every stored field, in storage order."""
        return tuple(f.name for f in self.fields)

    @property
    def readable_names(self) -> tuple[str, ...]:
        """The fields a read may return (all but the secret ones)."""
        return tuple(f.name for f in self.fields if f.name not in self.secret)

    def kind(self, name: str) -> Kind:
        return self._kinds[name]

    def where(self, row: Mapping[str, Any], position: int) -> str:
        line = row.get("line")
        place = f"line {line}" if isinstance(line, int) else f"row {position}"
        return f"{self.name} {place}"

    def normalise(self, row: Mapping[str, Any], position: int = 0) -> dict[str, Any]:
        """Canonical copy of `row` with every field present (missing ones are None).

        Raises `RecordError` for unknown fields, missing required fields and values of the wrong type.
        """
        if not row.keys() <= self._kinds.keys():
            unknown = sorted(row.keys() - self._kinds.keys())
            raise RecordError(f"{self.where(row, position)}: unknown field(s) {unknown}")
        out: dict[str, Any] = {}
        get = row.get
        for name, exact, coerce, kind in self._plan:
            value = get(name)
            if value is None or type(value) is exact:  # the common case: already canonical
                out[name] = value
                continue
            try:
                out[name] = coerce(value)
            except (TypeError, ValueError, OverflowError):
                raise RecordError(
                    f"{self.where(row, position)}: field '{name}' is not a valid {kind.value}"
                ) from None
        for name in self.required:
            if out[name] is None:
                raise RecordError(f"{self.where(row, position)}: field '{name}' is required")
        return out


def _to_int(v: Any) -> int:
    if isinstance(v, bool):
        raise TypeError
    return operator.index(v)  # int or a numpy integer; floats and strings are refused


def _to_float(v: Any) -> float:
    if isinstance(v, bool | str):
        raise TypeError
    f = float(v)
    if not math.isfinite(f):
        raise ValueError
    return f


def _to_str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError
    return v


def _to_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if hasattr(v, "dtype") and v.dtype == bool:  # numpy.bool_
        return bool(v)
    raise TypeError


def _to_date(v: Any) -> date:
    if isinstance(v, datetime):
        raise TypeError
    if isinstance(v, date):
        return v
    if isinstance(v, str):
        return date.fromisoformat(v)
    raise TypeError


def _to_timestamp(v: Any) -> datetime:
    if isinstance(v, datetime):
        if v.tzinfo is not None:
            raise ValueError  # the files hold local, naive times
        return v.replace(microsecond=0) if v.microsecond else v
    if isinstance(v, str):
        return _to_timestamp(datetime.fromisoformat(v))
    raise TypeError


def _to_str_list(v: Any) -> list[str]:
    if isinstance(v, str | bytes):
        raise TypeError
    items = list(v)
    if not all(isinstance(s, str) for s in items):
        raise TypeError
    return items


# Values of exactly these types need no conversion nor check (floats are checked for NaN/inf,
# timestamps for time zones, lists for their items).
_EXACT: dict[Kind, type] = {Kind.INT: int, Kind.STR: str, Kind.BOOL: bool, Kind.DATE: date}

_COERCE = {
    Kind.INT: _to_int,
    Kind.FLOAT: _to_float,
    Kind.STR: _to_str,
    Kind.BOOL: _to_bool,
    Kind.DATE: _to_date,
    Kind.TIMESTAMP: _to_timestamp,
    Kind.STR_LIST: _to_str_list,
}

CUSTOMER = Entity(
    name="customers",
    fields=fields_from_schema(USERS_SCHEMA, pii=[c.clean for c in USERS_COLUMNS if c.pii])
    + (Field("email", Kind.STR, pii=True),),
    key=("user",),
    required=("user",),
)
"""A customer: a row of the users file plus the contact e-mail."""

CARD_SOURCE_ONLY = frozenset({"card_number", "cvv"})
"""Cards-file fields core banking never stores: the clear PAN (it keeps `card_number_enc`) and the CVV."""


def _card_fields() -> tuple[Field, ...]:
    out: list[Field] = []
    for f in fields_from_schema(CARDS_SCHEMA, pii=[c.clean for c in CARDS_COLUMNS if c.pii]):
        if f.name == "card_number":
            out += [Field("card_number_enc", Kind.STR, pii=True), Field("pan_last4", Kind.STR)]
        elif f.name not in CARD_SOURCE_ONLY:
            out.append(f)
    return tuple(out)


CARD = Entity(
    name="cards",
    fields=_card_fields(),
    key=("user", "card_index"),
    required=("user", "card_index"),
)
"""A card: a row of the cards file without its CVV (never stored, in any form: PCI DSS forbids keeping it
after authorisation; issuers verify a CVV by recomputing it, see `cdp.security.cardverify`) and with the
PAN as `card_number_enc` (AES-GCM under the customer's data key, field "card_number", the lake's format)
plus `pan_last4` in clear. A row bringing `cvv` or `card_number` is refused as an unknown field."""

TRANSACTION = Entity(
    name="transactions",
    fields=(Field("transaction_id", Kind.STR),) + fields_from_schema(TRANSACTIONS_SCHEMA),
    key=("transaction_id",),
    required=("user", "card", "ts", "line"),
)
"""A card transaction (a row of the transactions file) with its deterministic `transaction_id`."""


def normalise_transaction(row: Mapping[str, Any], position: int = 0) -> dict[str, Any]:
    """`TRANSACTION.normalise` plus the id: derived from the row, and checked if the row brings one."""
    out = TRANSACTION.normalise(row, position)
    derived = transaction_id(out["user"], out["card"], out["ts"], out["line"])
    if out["transaction_id"] is not None and out["transaction_id"] != derived:
        where = TRANSACTION.where(row, position)
        raise RecordError(f"{where}: field 'transaction_id' does not match the row")
    out["transaction_id"] = derived
    return out


def rows_from_table(table: pa.Table | pa.RecordBatch, batch_size: int = 10_000) -> Iterator[dict[str, Any]]:
    """Row dicts of an Arrow table in the clean schemas, converted a batch at a time (bounded memory)."""
    batches = [table] if isinstance(table, pa.RecordBatch) else table.to_batches(max_chunksize=batch_size)
    for batch in batches:
        yield from batch.to_pylist()
