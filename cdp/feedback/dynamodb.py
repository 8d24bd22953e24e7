"""Reply codes and answers in the DynamoDB table `<prefix>notice-replies` (partition key `pk`, a string),
the AWS adapter: the reply route runs in Lambda, whose disk is gone after the function.

Two kinds of item: `code#<reply code>` (notice id, transaction ids as a string set, issue time, and once
answered the answer and when it became known) and `notice#<notice id>` (the set of its codes, so alerts
joining an episode later reach every code). Adding transactions is an atomic set union; the first answer
wins by a conditional write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.aws_resources import NOTICE_REPLIES_TABLE as TABLE_SUFFIX

if TYPE_CHECKING:
    from cdp.settings import Settings


def _code_key(reply_code: str) -> dict[str, Any]:
    return {"pk": {"S": f"code#{reply_code}"}}


def _notice_key(notice_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"notice#{notice_id}"}}


class DynamoDbReplyStore:
    """`ReplyStore` over one DynamoDB table."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDbReplyStore:
        """The table `<dynamodb_table_prefix>notice-replies` in `settings.aws_region`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        return cls(aws_client(settings, "dynamodb"), AwsResources.from_settings(settings).table(TABLE_SUFFIX))

    def issue(self, reply_code: str, notice_id: str, txn_ids: Sequence[str]) -> None:
        item: dict[str, Any] = {
            **_code_key(reply_code),
            "notice_id": {"S": notice_id},
            "issued_at": {"S": datetime.now(UTC).isoformat()},
        }
        if txn_ids:
            item["txn_ids"] = {"SS": sorted(set(txn_ids))}
        self.client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": self.table_name, "Item": item}},
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": _notice_key(notice_id),
                        "UpdateExpression": "ADD codes :c",
                        "ExpressionAttributeValues": {":c": {"SS": [reply_code]}},
                    }
                },
            ]
        )

    def extend(self, notice_id: str, txn_ids: Sequence[str]) -> None:
        if not txn_ids:
            return
        pointer = self.client.get_item(
            TableName=self.table_name, Key=_notice_key(notice_id), ConsistentRead=True
        ).get("Item")
        for code in sorted((pointer or {}).get("codes", {}).get("SS", [])):
            self.client.update_item(
                TableName=self.table_name,
                Key=_code_key(code),
                UpdateExpression="ADD txn_ids :t",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":t": {"SS": sorted(set(txn_ids))}},
            )

    def transactions(self, reply_code: str) -> list[str] | None:
        item = self.client.get_item(
            TableName=self.table_name, Key=_code_key(reply_code), ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        return sorted(item.get("txn_ids", {}).get("SS", []))

    def answer_once(self, reply_code: str, answer: str, known_at: datetime) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=_code_key(reply_code),
                UpdateExpression="SET answer = :a, known_at = :k",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(answer)",
                ExpressionAttributeValues={":a": {"S": answer}, ":k": {"S": known_at.isoformat()}},
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
