"""AWS data-key store: a DynamoDB table, partition key `pk` (S) = customer token.

Item: {pk, wrapped (B), key_version (S), created_at (S), context (S, canonical JSON; absent on items written
before contexts were kept)}; an erased item keeps pk and `erased_at` (and its context) only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.security.datakeys.port import StoredKey, decode_context, encode_context
from cdp.security.errors import CustomerErased

if TYPE_CHECKING:
    from cdp.settings import Settings


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _conditional_failed(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoDataKeyStore:
    """`DataKeyStore` over one DynamoDB table (low-level client)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDataKeyStore:
        """The platform data-key table `<CDP_DYNAMODB_TABLE_PREFIX>data-keys` in `CDP_AWS_REGION`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import DATA_KEYS_TABLE, AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).table(DATA_KEYS_TABLE))

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def put(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> None:
        if context is None:  # keep a context stored earlier
            known = self.entry(customer_token)
            context = known.context if known is not None else None
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._item(customer_token, wrapped, key_version, context),
                ConditionExpression="attribute_not_exists(erased_at)",
            )
        except ClientError as e:
            if _conditional_failed(e):
                raise CustomerErased(customer_token) from None
            raise

    def put_if_absent(
        self, customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None = None
    ) -> bool:
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=self._item(customer_token, wrapped, key_version, context),
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True

    def swap(
        self, entry_id: str, expected: bytes, wrapped: bytes, key_version: str, context: Mapping[str, str]
    ) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": entry_id}},
                UpdateExpression="SET #w = :new, key_version = :v, #c = :c",
                ConditionExpression="#w = :old",
                ExpressionAttributeNames={"#w": "wrapped", "#c": "context"},  # reserved words
                ExpressionAttributeValues={
                    ":new": {"B": bytes(wrapped)},
                    ":old": {"B": bytes(expected)},
                    ":v": {"S": key_version},
                    ":c": {"S": encode_context(context)},
                },
            )
        except ClientError as e:
            if _conditional_failed(e):
                return False
            raise
        return True

    def entry(self, entry_id: str) -> StoredKey | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": entry_id}}, ConsistentRead=True
        ).get("Item")
        return _stored(item) if item and "wrapped" in item else None

    def entries(self) -> Iterator[StoredKey]:
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            FilterExpression="attribute_exists(#w)",
            ExpressionAttributeNames={"#w": "wrapped"},
            ConsistentRead=True,
        )
        for page in pages:
            yield from (_stored(item) for item in page.get("Items", []))

    def get(self, customer_token: str) -> bytes | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": customer_token}}, ConsistentRead=True
        ).get("Item")
        if not item or "wrapped" not in item:
            return None
        return bytes(item["wrapped"]["B"])

    def delete(self, customer_token: str) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"pk": {"S": customer_token}},
                UpdateExpression="REMOVE #w, key_version SET erased_at = :t",
                ConditionExpression="attribute_exists(#w)",
                ExpressionAttributeNames={"#w": "wrapped"},  # WRAPPED is a reserved word
                ExpressionAttributeValues={":t": {"S": _now()}},
            )
            return True
        except ClientError as e:
            if not _conditional_failed(e):
                raise
        # no live key: leave a tombstone if there is nothing at all
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"pk": {"S": customer_token}, "created_at": {"S": _now()}, "erased_at": {"S": _now()}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as e:
            if not _conditional_failed(e):
                raise
        return False

    def is_erased(self, customer_token: str) -> bool:
        item = self.client.get_item(
            TableName=self.table_name, Key={"pk": {"S": customer_token}}, ConsistentRead=True
        ).get("Item")
        return bool(item) and "erased_at" in item

    def tokens(self) -> Iterator[str]:
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
            ProjectionExpression="pk",
            FilterExpression="attribute_exists(#w)",
            ExpressionAttributeNames={"#w": "wrapped"},
            ConsistentRead=True,
        )
        for page in pages:
            yield from (item["pk"]["S"] for item in page.get("Items", []))

    @staticmethod
    def _item(
        customer_token: str, wrapped: bytes, key_version: str, context: Mapping[str, str] | None
    ) -> dict[str, Any]:
        item = {
            "pk": {"S": customer_token},
            "wrapped": {"B": bytes(wrapped)},
            "key_version": {"S": key_version},
            "created_at": {"S": _now()},
        }
        if context is not None:
            item["context"] = {"S": encode_context(context)}
        return item


def _stored(item: dict[str, Any]) -> StoredKey:
    return StoredKey(
        item["pk"]["S"],
        bytes(item["wrapped"]["B"]),
        item.get("key_version", {}).get("S"),
        decode_context(item.get("context", {}).get("S")),
    )


def create_table(client: Any, table_name: str) -> None:
    """Create the data-key table (on-demand billing) if it does not exist, and wait until it is active."""
    try:
        client.create_table(
            TableName=table_name,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(TableName=table_name)
