"""DynamoDB online store: one item per key (`key` S, `state` B), batched reads and writes.

Writes go straight to the table (DynamoDB is durable), so `snapshot()` has nothing to do. Items are
limited to 400 KB: feature states keep only the events inside their longest window.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from cdp.settings import Settings

_GET_BATCH = 100
_WRITE_BATCH = 25


class DynamoDbOnlineStore:
    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDbOnlineStore:
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import ONLINE_FEATURES_TABLE, AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).table(ONLINE_FEATURES_TABLE))

    def create_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist and wait until it is active."""
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "key", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "key", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except self.client.exceptions.ResourceInUseException:
            pass
        self.client.get_waiter("table_exists").wait(TableName=self.table)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted(set(keys))
        out: dict[str, bytes] = {}
        for start in range(0, len(wanted), _GET_BATCH):
            request = {self.table: {"Keys": [{"key": {"S": k}} for k in wanted[start : start + _GET_BATCH]]}}
            for attempt in range(8):
                resp = self.client.batch_get_item(RequestItems=request)
                for item in resp.get("Responses", {}).get(self.table, []):
                    out[item["key"]["S"]] = bytes(item["state"]["B"])
                request = resp.get("UnprocessedKeys") or {}
                if not request:
                    break
                time.sleep(0.05 * 2**attempt)
            if request:
                raise RuntimeError(f"online store {self.table}: reads still unprocessed after retries")
        return out

    def _write(self, requests: list[dict[str, Any]]) -> None:
        for start in range(0, len(requests), _WRITE_BATCH):
            pending = {self.table: requests[start : start + _WRITE_BATCH]}
            for attempt in range(8):
                resp = self.client.batch_write_item(RequestItems=pending)
                pending = resp.get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(0.05 * 2**attempt)
            if pending:
                raise RuntimeError(f"online store {self.table}: writes still unprocessed after retries")

    def put_many(self, items: Mapping[str, bytes]) -> None:
        self._write(
            [{"PutRequest": {"Item": {"key": {"S": k}, "state": {"B": v}}}} for k, v in items.items()]
        )

    def delete_many(self, keys: Iterable[str]) -> None:
        self._write([{"DeleteRequest": {"Key": {"key": {"S": k}}}} for k in sorted(set(keys))])

    def keys(self, prefix: str = "") -> list[str]:
        out: list[str] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ProjectionExpression": "#k",
                                  "ExpressionAttributeNames": {"#k": "key"}}  # fmt: skip
        if prefix:
            kwargs["FilterExpression"] = "begins_with(#k, :p)"
            kwargs["ExpressionAttributeValues"] = {":p": {"S": prefix}}
        while True:
            resp = self.client.scan(**kwargs)
            out += [item["key"]["S"] for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return sorted(out)
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def snapshot(self) -> int:
        return 0
