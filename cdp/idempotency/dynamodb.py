"""The idempotency index in DynamoDB, for consumers running in Lambda (no shared disk between invocations).

One table (`<prefix>landed-index`, the name it was first deployed under; hash key `txn_id`, a string)
serves every consumer: an item's key is `<consumer>#<txn_id>`. Items hold `batch`, `applied` (bool) and
`expires_at` (epoch seconds, the table's TTL attribute): an id only needs remembering while the stream can
still deliver it again, so the default time to live is the stream's longest retention plus a day.

Claims are exclusive through conditional writes: `record` writes each item only if it does not exist or
already belongs to the same batch (`TransactWriteItems`, 100 items a call; when a call is cancelled by a
failed condition, that call's items are claimed one by one to find which ids another batch holds).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cdp.aws_resources import IDEMPOTENCY_TABLE as TABLE_SUFFIX  # renaming it would drop the live claims
from cdp.idempotency.port import Claim

if TYPE_CHECKING:
    from cdp.settings import Settings

KEY = "txn_id"
TTL_ATTRIBUTE = "expires_at"
DEFAULT_TTL_SECONDS = (365 + 1) * 86_400  # Kinesis' longest retention, plus a day
_GET_CHUNK = 100  # BatchGetItem limit
_TRANSACT_CHUNK = 100  # TransactWriteItems limit
_MAX_RETRIES = 8


class DynamoDbIdempotencyIndex:
    """`IdempotencyIndex` over a DynamoDB table through a boto3 client."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        consumer: str,
        *,
        ttl_seconds: int = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.table_name = table_name
        self.consumer = consumer
        self.ttl_seconds = ttl_seconds
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, consumer: str) -> DynamoDbIdempotencyIndex:
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).table(TABLE_SUFFIX), consumer)

    def create_table(self) -> None:
        """Create the table (on-demand) with its TTL attribute; infrastructure code does this in AWS."""
        self.client.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client.get_waiter("table_exists").wait(TableName=self.table_name)
        self.client.update_time_to_live(
            TableName=self.table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )

    # -- keys -----------------------------------------------------------------------------------------
    def _key(self, txn_id: str) -> str:
        return f"{self.consumer}#{txn_id}"

    def _txn_id(self, key: str) -> str:
        return key.split("#", 1)[1]

    def _item(self, txn_id: str, batch: str, applied: bool) -> dict[str, Any]:
        return {
            KEY: {"S": self._key(txn_id)},
            "batch": {"S": batch},
            "applied": {"BOOL": applied},
            TTL_ATTRIBUTE: {"N": str(int(self.clock()) + self.ttl_seconds)},
        }

    # -- reads ----------------------------------------------------------------------------------------
    def lookup(self, txn_ids: Sequence[str]) -> dict[str, Claim]:
        found: dict[str, Claim] = {}
        ids = list(dict.fromkeys(txn_ids))
        for i in range(0, len(ids), _GET_CHUNK):
            request: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{KEY: {"S": self._key(t)}} for t in ids[i : i + _GET_CHUNK]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "#k, #b, applied",
                    "ExpressionAttributeNames": {"#k": KEY, "#b": "batch"},
                }
            }
            for attempt in range(_MAX_RETRIES):
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    found[self._txn_id(item[KEY]["S"])] = Claim(
                        item["batch"]["S"], bool(item.get("applied", {}).get("BOOL", False))
                    )
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError(f"DynamoDB table {self.table_name}: keys left unprocessed after retries")
        return found

    def claimed_elsewhere(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        return {t for t, entry in self.lookup(txn_ids).items() if entry.batch != batch}

    def count(self) -> int:
        """Items of this consumer (a full scan: for tests and operations, not the hot path)."""
        total, start = 0, None
        while True:
            kwargs: dict[str, Any] = {
                "TableName": self.table_name,
                "Select": "COUNT",
                "FilterExpression": "begins_with(#k, :consumer)",
                "ExpressionAttributeNames": {"#k": KEY},
                "ExpressionAttributeValues": {":consumer": {"S": f"{self.consumer}#"}},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            response = self.client.scan(**kwargs)
            total += response["Count"]
            start = response.get("LastEvaluatedKey")
            if not start:
                return total

    # -- writes ---------------------------------------------------------------------------------------
    def _claim(self, txn_id: str, batch: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Item": self._item(txn_id, batch, applied=False),
            "ConditionExpression": "attribute_not_exists(#k) OR #b = :batch",
            "ExpressionAttributeNames": {"#k": KEY, "#b": "batch"},
            "ExpressionAttributeValues": {":batch": {"S": batch}},
        }

    def record(self, txn_ids: Sequence[str], batch: str) -> set[str]:
        ids = list(dict.fromkeys(txn_ids))
        already = self.lookup(ids)  # a re-delivered batch keeps its claims (and their `applied` mark)
        taken = {t for t, entry in already.items() if entry.batch != batch}
        new = [t for t in ids if t not in already]
        errors = self.client.exceptions
        for i in range(0, len(new), _TRANSACT_CHUNK):
            part = new[i : i + _TRANSACT_CHUNK]
            try:
                self.client.transact_write_items(TransactItems=[{"Put": self._claim(t, batch)} for t in part])
            except errors.TransactionCanceledException:
                for txn_id in part:  # someone claimed some of these meanwhile: find which, one by one
                    try:
                        self.client.put_item(**self._claim(txn_id, batch))
                    except errors.ConditionalCheckFailedException:
                        taken.add(txn_id)
        return taken

    def _mark(self, txn_id: str, batch: str) -> dict[str, Any]:
        return {
            "TableName": self.table_name,
            "Key": {KEY: {"S": self._key(txn_id)}},
            "UpdateExpression": "SET applied = :true",
            "ConditionExpression": "#b = :batch",
            "ExpressionAttributeNames": {"#b": "batch"},
            "ExpressionAttributeValues": {":true": {"BOOL": True}, ":batch": {"S": batch}},
        }

    def mark_applied(self, txn_ids: Sequence[str], batch: str) -> None:
        """Conditional updates (only `batch`'s own claims), 100 per transaction; a transaction cancelled by
        an id that is not this batch's is redone item by item, passing over that id."""
        ids = list(dict.fromkeys(txn_ids))
        errors = self.client.exceptions
        for i in range(0, len(ids), _TRANSACT_CHUNK):
            part = ids[i : i + _TRANSACT_CHUNK]
            try:
                self.client.transact_write_items(
                    TransactItems=[{"Update": self._mark(t, batch)} for t in part]
                )
            except errors.TransactionCanceledException:
                for txn_id in part:
                    try:
                        self.client.update_item(**self._mark(txn_id, batch))
                    except errors.ConditionalCheckFailedException:
                        continue  # another batch's claim, or none: nothing to mark

    def close(self) -> None:
        """Nothing to release (the client is shared)."""
