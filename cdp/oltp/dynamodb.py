"""AWS adapter of the OLTP store: three DynamoDB tables (on-demand), string keys `pk` / `sk`.

    table                    pk                      sk                        item
    <prefix>customers        USER#<user>             -                         users file row + email
    <prefix>cards            USER#<user>             CARD#<card_index, 2 dig>  cards row: encrypted PAN
    <prefix>transactions     CARD#<user>#<card>      TS#<ts ISO>#<txn id>      transactions file row + id
    <prefix>erasures         USER#<user>             -                         erasure tombstone (no PII)

One table per record type keeps scans of customers and cards (thousands of items) apart from the
transactions (millions). A card's transactions are one partition sorted by time, so "history of a card
since T" is a single Query (`sk >= TS#<T>`); the typed prefixes allow merging everything into one table
later without changing a key. The transaction id (see `cdp.oltp.ids`) is derived from the row, so a
re-sent transaction has the same key: `put_transactions` batch-gets the keys of each chunk of 100 and
batch-writes only the absent ones (a race between two writers can count one twice; the stored item is the
same either way). Values: ints as numbers, floats as exact decimals of their shortest repr, dates and
timestamps as ISO strings, error codes as a list, None as an absent attribute. Reads are strongly
consistent and project only the returned fields. An erased user's transactions are held:
`transactions_for_card` reads the user's tombstone first (one strongly consistent GetItem) and returns none
of them unless asked for the legal hold; the purge finds the user's card partitions by probing every card
index the files allow. Card items written by an earlier release also hold a `cvv` and a clear
`card_number`; `legacy_cards` finds them (a filtered scan) and `migrate_cards` removes both attributes and
sets the encrypted PAN, item by item (point-in-time-recovery backups keep the old items until their
retention ends).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from cdp.oltp.erasures import LEGAL_HOLD_PURPOSE, Erasure
from cdp.oltp.port import Counts, Row
from cdp.oltp.records import CARD, CUSTOMER, TRANSACTION, Entity, Kind, normalise_transaction
from cdp.settings import Settings

BATCH_GET_MAX = 100
MAX_CARD_INDEX = 127  # the readers accept card indexes 0..127
ERASURES = "erasures"
_KEY_FIELDS = ("pk", "sk")


def customer_key(user: int) -> dict[str, str]:
    return {"pk": f"USER#{user}"}


def card_key(user: int, card_index: int) -> dict[str, str]:
    return {"pk": f"USER#{user}", "sk": f"CARD#{card_index:02d}"}


def card_partition(user: int, card: int) -> str:
    return f"CARD#{user}#{card}"


def transaction_key(user: int, card: int, ts: datetime, txn_id: str) -> dict[str, str]:
    return {"pk": card_partition(user, card), "sk": f"TS#{ts.isoformat(timespec='seconds')}#{txn_id}"}


TABLE_KEYS: dict[str, tuple[str, ...]] = {
    CUSTOMER.name: ("pk",),
    CARD.name: ("pk", "sk"),
    TRANSACTION.name: ("pk", "sk"),
    ERASURES: ("pk",),
}
"""Key attributes (all strings) of each table, by record type; infrastructure code creates the same."""

_ENCODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.FLOAT: lambda v: Decimal(repr(v)),
    Kind.DATE: date.isoformat,
    Kind.TIMESTAMP: lambda v: v.isoformat(timespec="seconds"),
}
_DECODE: dict[Kind, Callable[[Any], Any]] = {
    Kind.INT: int,
    Kind.FLOAT: float,
    Kind.DATE: date.fromisoformat,
    Kind.TIMESTAMP: datetime.fromisoformat,
    Kind.STR_LIST: list,
}


def _item(entity: Entity, row: dict[str, Any], key: dict[str, str]) -> dict[str, Any]:
    item = dict(key)
    for f in entity.fields:
        v = row[f.name]
        if v is not None:
            fn = _ENCODE.get(f.kind)
            item[f.name] = fn(v) if fn else v
    return item


def _row(entity: Entity, item: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in entity.readable_names:
        v = item.get(name)
        fn = _DECODE.get(entity.kind(name))
        out[name] = fn(v) if (fn and v is not None) else v
    return out


def transaction_row(item: dict[str, Any]) -> dict[str, Any]:
    """The transactions-file row (and `transaction_id`) of a stored transaction item (e.g. a stream image)."""
    return _row(TRANSACTION, item)


def _erasure_item(e: Erasure) -> dict[str, Any]:
    item: dict[str, Any] = {
        **customer_key(e.user),
        "user": e.user,
        "erased_at": e.erased_at.isoformat(timespec="seconds"),
        "actor": e.actor,
        "role": e.role,
        "hold_until": e.hold_until.isoformat(),
        "cards": list(e.cards),
    }
    if e.request_id is not None:
        item["request_id"] = e.request_id
    if e.purged_at is not None:
        item["purged_at"] = e.purged_at.isoformat(timespec="seconds")
    return item


def _erasure(item: dict[str, Any]) -> Erasure:
    purged = item.get("purged_at")
    return Erasure(
        user=int(item["user"]),
        erased_at=datetime.fromisoformat(item["erased_at"]),
        actor=item["actor"],
        role=item["role"],
        hold_until=date.fromisoformat(item["hold_until"]),
        request_id=item.get("request_id"),
        cards=tuple(int(c) for c in item.get("cards", [])),
        purged_at=datetime.fromisoformat(purged) if purged else None,
    )


def _projection(names: Iterable[str]) -> dict[str, Any]:
    """ProjectionExpression with placeholders (`user`, `line`, `state`... are reserved words)."""
    aliases = {f"#a{i}": n for i, n in enumerate(names)}
    return {"ProjectionExpression": ", ".join(aliases), "ExpressionAttributeNames": aliases}


def _chunks(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


class DynamoDbOltpStore:
    """The OLTP store in DynamoDB tables `<prefix>customers`, `<prefix>cards`, `<prefix>transactions`.

    Like the boto3 resource it wraps, one instance serves one thread.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDbOltpStore:
        """The AWS store in `settings.aws_region` with tables named `<dynamodb_table_prefix><record type>`."""
        from cdp.aws_clients import aws_resource

        return cls(aws_resource(settings, "dynamodb"), settings.dynamodb_table_prefix)

    def __init__(self, resource: Any, table_prefix: str = "cdp-", *, page_size: int | None = None) -> None:
        self._resource = resource
        self.page_size = page_size  # items per Scan/Query page; None lets DynamoDB page by 1 MB
        self.table_names = {name: f"{table_prefix}{name}" for name in TABLE_KEYS}
        self._tables = {name: resource.Table(t) for name, t in self.table_names.items()}

    def create_tables(self) -> None:
        """Create the tables that do not exist yet (on-demand billing) and wait until they are active."""
        existing = set(self._resource.meta.client.list_tables().get("TableNames", []))
        client = self._resource.meta.client
        for name, table_name in self.table_names.items():
            if table_name in existing:
                continue
            keys = TABLE_KEYS[name]
            client.create_table(
                TableName=table_name,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ("HASH", "RANGE")[: len(keys)], strict=True)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
                SSESpecification={"Enabled": True},
            )
        for table_name in self.table_names.values():
            client.get_waiter("table_exists").wait(TableName=table_name)

    # -- writes ---------------------------------------------------------------------------------------
    def _upsert(self, entity: Entity, rows: Iterable[Row], key_of: Callable[[dict[str, Any]], dict]) -> int:
        written = 0
        table = self._tables[entity.name]
        with table.batch_writer(overwrite_by_pkeys=list(TABLE_KEYS[entity.name])) as writer:
            for i, row in enumerate(rows, 1):
                clean = entity.normalise(row, i)
                writer.put_item(Item=_item(entity, clean, key_of(clean)))
                written += 1
        return written

    def upsert_customers(self, rows: Iterable[Row]) -> int:
        return self._upsert(CUSTOMER, rows, lambda r: customer_key(r["user"]))

    def upsert_cards(self, rows: Iterable[Row]) -> int:
        return self._upsert(CARD, rows, lambda r: card_key(r["user"], r["card_index"]))

    def put_transactions(self, rows: Iterable[Row]) -> int:
        table = self._tables[TRANSACTION.name]
        clean_rows = (normalise_transaction(row, i) for i, row in enumerate(rows, 1))
        new = 0
        for chunk in _chunks(clean_rows, BATCH_GET_MAX):
            items: dict[tuple[str, str], dict[str, Any]] = {}
            for r in chunk:
                key = transaction_key(r["user"], r["card"], r["ts"], r["transaction_id"])
                items[(key["pk"], key["sk"])] = _item(TRANSACTION, r, key)
            stored = self._existing_keys(TRANSACTION.name, list(items))
            fresh = [item for k, item in items.items() if k not in stored]
            with table.batch_writer() as writer:
                for item in fresh:
                    writer.put_item(Item=item)
            new += len(fresh)
        return new

    def _existing_keys(self, entity_name: str, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of `keys` (at most 100) are stored (strongly consistent BatchGetItem, retried)."""
        table_name = self.table_names[entity_name]
        request = {
            table_name: {
                "Keys": [{"pk": pk, "sk": sk} for pk, sk in keys],
                "ConsistentRead": True,
                "ProjectionExpression": "pk, sk",
            }
        }
        found: set[tuple[str, str]] = set()
        delay = 0.05
        while request:
            response = self._resource.batch_get_item(RequestItems=request)
            found.update((it["pk"], it["sk"]) for it in response["Responses"].get(table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if request:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        return found

    def delete_customer(self, user: int) -> int:
        cards = self._tables[CARD.name]
        pages = self._query_all(
            CARD.name,
            KeyConditionExpression=Key("pk").eq(customer_key(user)["pk"]),
            ProjectionExpression="pk, sk",
        )
        card_keys = [{"pk": it["pk"], "sk": it["sk"]} for it in pages]
        with cards.batch_writer() as writer:
            for key in card_keys:
                writer.delete_item(Key=key)
        removed = len(card_keys)
        try:
            self._tables[CUSTOMER.name].delete_item(
                Key=customer_key(user), ConditionExpression="attribute_exists(pk)"
            )
            removed += 1
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        return removed

    def record_erasure(self, erasure: Erasure) -> Erasure:
        try:
            self._tables[ERASURES].put_item(
                Item=_erasure_item(erasure), ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        stored = self.get_erasure(erasure.user)
        assert stored is not None
        return stored

    def get_erasure(self, user: int) -> Erasure | None:
        found = self._tables[ERASURES].get_item(Key=customer_key(user), ConsistentRead=True)
        item = found.get("Item")
        return _erasure(item) if item else None

    def iter_erasures(self) -> Iterator[Erasure]:
        for page in self._scan_all(ERASURES, ConsistentRead=True):
            yield from (_erasure(it) for it in page.get("Items", []))

    def purge_held_transactions(self, user: int, purged_at: datetime) -> int:
        if self.get_erasure(user) is None:
            return 0
        table = self._tables[TRANSACTION.name]
        deleted = 0
        for card in range(MAX_CARD_INDEX + 1):
            keys = [
                {"pk": it["pk"], "sk": it["sk"]}
                for it in self._query_all(
                    TRANSACTION.name,
                    KeyConditionExpression=Key("pk").eq(card_partition(user, card)),
                    ProjectionExpression="pk, sk",
                )
            ]
            with table.batch_writer() as writer:
                for key in keys:
                    writer.delete_item(Key=key)
            deleted += len(keys)
        self._tables[ERASURES].update_item(
            Key=customer_key(user),
            UpdateExpression="SET purged_at = :t",
            ExpressionAttributeValues={":t": purged_at.isoformat(timespec="seconds")},
        )
        return deleted

    # -- reads ----------------------------------------------------------------------------------------
    def _get(self, entity: Entity, key: dict[str, str]) -> dict[str, Any] | None:
        found = self._tables[entity.name].get_item(
            Key=key, ConsistentRead=True, **_projection(entity.readable_names)
        )
        item = found.get("Item")
        return _row(entity, item) if item else None

    def _query_all(
        self, entity_name: str, limit: int | None = None, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        table = self._tables[entity_name]
        kwargs["ConsistentRead"] = True
        remaining = limit
        while True:
            page_limit = [n for n in (remaining, self.page_size) if n]
            if page_limit:
                kwargs["Limit"] = min(page_limit)
            page = table.query(**kwargs)
            items = page.get("Items", [])
            yield from items
            if remaining is not None:
                remaining -= len(items)
                if remaining <= 0:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _scan_all(self, entity_name: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        table = self._tables[entity_name]
        if self.page_size:
            kwargs["Limit"] = self.page_size
        while True:
            page = table.scan(**kwargs)
            yield page
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_customer(self, user: int) -> dict[str, Any] | None:
        return self._get(CUSTOMER, customer_key(user))

    def get_card(self, user: int, card_index: int) -> dict[str, Any] | None:
        return self._get(CARD, card_key(user, card_index))

    def list_cards(self, user: int) -> list[dict[str, Any]]:
        items = self._query_all(
            CARD.name,
            KeyConditionExpression=Key("pk").eq(customer_key(user)["pk"]),
            **_projection(CARD.readable_names),
        )
        return [_row(CARD, it) for it in items]

    def iter_customers(self) -> Iterator[dict[str, Any]]:
        for page in self._scan_all(
            CUSTOMER.name, ConsistentRead=True, **_projection(CUSTOMER.readable_names)
        ):
            yield from (_row(CUSTOMER, it) for it in page.get("Items", []))

    def iter_cards(self) -> Iterator[dict[str, Any]]:
        for page in self._scan_all(CARD.name, ConsistentRead=True, **_projection(CARD.readable_names)):
            yield from (_row(CARD, it) for it in page.get("Items", []))

    def transactions_for_card(
        self,
        user: int,
        card: int,
        since: datetime | None = None,
        limit: int | None = None,
        *,
        purpose: str | None = None,
    ) -> list[dict[str, Any]]:
        if limit is not None and limit <= 0:
            return []
        if purpose != LEGAL_HOLD_PURPOSE and self.get_erasure(user) is not None:
            return []  # held: an erased customer's transactions are for the legal hold only
        pk = Key("pk").eq(card_partition(user, card))
        sk = (
            Key("sk").gte(f"TS#{since.isoformat(timespec='seconds')}")
            if since
            else Key("sk").begins_with("TS#")
        )
        items = self._query_all(
            TRANSACTION.name, limit, KeyConditionExpression=pk & sk, **_projection(TRANSACTION.readable_names)
        )
        return [_row(TRANSACTION, it) for it in items]

    # -- migration of items written by earlier releases --------------------------------------------------
    def legacy_cards(self) -> Iterator[dict[str, Any]]:
        names = {"#u": "user", "#c": "card_index", "#n": "card_number", "#v": "cvv"}
        for page in self._scan_all(
            CARD.name,
            ConsistentRead=True,
            FilterExpression="attribute_exists(#v) OR attribute_exists(#n)",
            ProjectionExpression="#u, #c, #n",
            ExpressionAttributeNames=names,
        ):
            for it in page.get("Items", []):
                yield {
                    "user": int(it["user"]),
                    "card_index": int(it["card_index"]),
                    "card_number": it.get("card_number"),
                }

    def migrate_cards(self, protected: Iterable[Row]) -> int:
        table = self._tables[CARD.name]
        rewritten = 0
        for row in protected:
            names = {"#v": "cvv", "#n": "card_number"}
            values = {}
            sets = []
            for i, field in enumerate(("card_number_enc", "pan_last4")):
                if row[field] is not None:
                    names[f"#s{i}"], values[f":s{i}"] = field, row[field]
                    sets.append(f"#s{i} = :s{i}")
            update = "REMOVE #v, #n" + (f" SET {', '.join(sets)}" if sets else "")
            extra = {"ExpressionAttributeValues": values} if values else {}
            try:
                table.update_item(
                    Key=card_key(row["user"], row["card_index"]),
                    UpdateExpression=update,
                    ConditionExpression="attribute_exists(pk)",  # never re-create a card deleted meanwhile
                    ExpressionAttributeNames=names,
                    **extra,
                )
            except ClientError as err:
                if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
                continue
            rewritten += 1
        return rewritten

    def counts(self) -> Counts:
        n = {
            name: sum(page["Count"] for page in self._scan_all(name, Select="COUNT", ConsistentRead=True))
            for name in (CUSTOMER.name, CARD.name, TRANSACTION.name)
        }
        return Counts(customers=n[CUSTOMER.name], cards=n[CARD.name], transactions=n[TRANSACTION.name])

    def close(self) -> None:
        """Nothing to release (boto3 pools connections per client)."""
