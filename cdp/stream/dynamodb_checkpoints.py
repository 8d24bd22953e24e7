"""Consumer checkpoints in a DynamoDB table, like the Kinesis Client Library's lease table.

One item per (stream/consumer, shard): hash key `lease_key` = "<stream>/<consumer>", range key `shard_id`,
attribute `checkpoint` (the last processed sequence number). The table is created on first use
(on-demand billing) when it does not exist.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError


class DynamoDbCheckpoints:
    """Read and write consumer checkpoints of one stream in a DynamoDB table."""

    def __init__(
        self, client: Any, table_name: str, stream_name: str, *, create_if_missing: bool = True
    ) -> None:
        self._client = client
        self.table_name = table_name
        self.stream_name = stream_name
        if create_if_missing:
            self.ensure_table()

    def ensure_table(self) -> None:
        """Create the table (and wait until it is active) unless it already exists."""
        try:
            self._client.describe_table(TableName=self.table_name)
            return
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
        try:
            self._client.create_table(
                TableName=self.table_name,
                KeySchema=[
                    {"AttributeName": "lease_key", "KeyType": "HASH"},
                    {"AttributeName": "shard_id", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "lease_key", "AttributeType": "S"},
                    {"AttributeName": "shard_id", "AttributeType": "S"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                raise
        self._client.get_waiter("table_exists").wait(TableName=self.table_name)

    def _lease_key(self, consumer: str) -> str:
        return f"{self.stream_name}/{consumer}"

    def put(self, consumer: str, shard_id: str, sequence_number: str) -> None:
        self._client.put_item(
            TableName=self.table_name,
            Item={
                "lease_key": {"S": self._lease_key(consumer)},
                "shard_id": {"S": shard_id},
                "checkpoint": {"S": str(sequence_number)},
                "updated_ms": {"N": str(int(time.time() * 1000))},
            },
        )

    def get(self, consumer: str, shard_id: str) -> str | None:
        item = self._client.get_item(
            TableName=self.table_name,
            Key={"lease_key": {"S": self._lease_key(consumer)}, "shard_id": {"S": shard_id}},
            ConsistentRead=True,
        ).get("Item")
        return item["checkpoint"]["S"] if item else None
