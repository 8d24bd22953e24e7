"""AWS adapter of the API-key store: one DynamoDB item per key (`key_id` S), on-demand billing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cdp.apikeys.port import ApiKeyError, ApiKeyRecord, UnknownApiKeyError
from cdp.aws_resources import API_KEYS_TABLE as TABLE_SUFFIX
from cdp.settings import Settings


def _item(record: ApiKeyRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key_id": {"S": record.key_id},
        "secret_sha256": {"S": record.secret_sha256},
        "scopes": {"L": [{"S": s} for s in record.scopes]},
        "label": {"S": record.label},
        "created_at": {"S": record.created_at.isoformat()},
    }
    for name in ("revoked_at", "expires_at", "previous_valid_until"):
        moment = getattr(record, name)
        if moment is not None:
            item[name] = {"S": moment.isoformat()}
    if record.previous_secret_sha256 is not None:
        item["previous_secret_sha256"] = {"S": record.previous_secret_sha256}
    return item


def _time(item: dict[str, Any], name: str) -> datetime | None:
    text = item.get(name, {}).get("S")
    return None if text is None else datetime.fromisoformat(text)


def _record(item: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=item["key_id"]["S"],
        secret_sha256=item["secret_sha256"]["S"],
        scopes=tuple(s["S"] for s in item["scopes"]["L"]),
        label=item["label"]["S"],
        created_at=datetime.fromisoformat(item["created_at"]["S"]),
        revoked_at=_time(item, "revoked_at"),
        expires_at=_time(item, "expires_at"),
        previous_secret_sha256=item.get("previous_secret_sha256", {}).get("S"),
        previous_valid_until=_time(item, "previous_valid_until"),
    )


class DynamoDbApiKeyStore:
    """`ApiKeyStore` in the DynamoDB table `table` (a boto3 DynamoDB client)."""

    def __init__(self, client: Any, table: str) -> None:
        self.client = client
        self.table = table

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDbApiKeyStore:
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).table(TABLE_SUFFIX))

    def create_table(self) -> None:
        """Create the table if it does not exist and wait until it is active."""
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[{"AttributeName": "key_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "key_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        except self.client.exceptions.ResourceInUseException:
            pass
        self.client.get_waiter("table_exists").wait(TableName=self.table)

    def add(self, record: ApiKeyRecord) -> None:
        try:
            self.client.put_item(
                TableName=self.table, Item=_item(record), ConditionExpression="attribute_not_exists(key_id)"
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ApiKeyError("an API key with that id already exists") from None

    def get(self, key_id: str) -> ApiKeyRecord | None:
        item = self.client.get_item(
            TableName=self.table, Key={"key_id": {"S": key_id}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else _record(item)

    def list(self) -> list[ApiKeyRecord]:
        records: list[ApiKeyRecord] = []
        kwargs: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.client.scan(**kwargs)
            records.extend(_record(i) for i in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(records, key=lambda r: (r.created_at, r.key_id))

    def revoke(self, key_id: str, when: datetime) -> ApiKeyRecord:
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression="SET revoked_at = if_not_exists(revoked_at, :when)",
                ConditionExpression="attribute_exists(key_id)",
                ExpressionAttributeValues={":when": {"S": when.isoformat()}},
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise UnknownApiKeyError(f"no API key with id {key_id!r}") from None
        record = self.get(key_id)
        assert record is not None
        return record

    def rotate(
        self, key_id: str, secret_sha256: str, expires_at: datetime | None, previous_valid_until: datetime
    ) -> ApiKeyRecord:
        current = self.get(key_id)
        if current is None:
            raise UnknownApiKeyError(f"no API key with id {key_id!r}")
        values: dict[str, Any] = {
            ":new": {"S": secret_sha256},
            ":old": {"S": current.secret_sha256},
            ":until": {"S": previous_valid_until.isoformat()},
        }
        update = "SET secret_sha256 = :new, previous_secret_sha256 = :old, previous_valid_until = :until"
        if expires_at is None:
            update += " REMOVE expires_at"
        else:
            update += ", expires_at = :expires"
            values[":expires"] = {"S": expires_at.isoformat()}
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"key_id": {"S": key_id}},
                UpdateExpression=update,
                # the hash read above must still be current: two rotations at once cannot lose a secret
                ConditionExpression="attribute_exists(key_id) AND attribute_not_exists(revoked_at) "
                "AND secret_sha256 = :old",
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            raise ApiKeyError(f"API key {key_id!r} is revoked or was rotated meanwhile") from None
        record = self.get(key_id)
        assert record is not None
        return record
