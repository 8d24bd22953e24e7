"""Erasure requests in the DynamoDB table `<prefix>erasure-requests` (partition key `id`), the AWS adapter."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.corebanking.erasure_requests.port import PENDING, ErasureRequest

if TYPE_CHECKING:
    from cdp.settings import Settings

from cdp.aws_resources import ERASURE_REQUESTS_TABLE as TABLE_SUFFIX


class DynamoDbErasureRequests:
    """`ErasureRequests` over the DynamoDB table `<prefix>erasure-requests` (partition key `id`)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @classmethod
    def from_settings(cls, settings: Settings) -> DynamoDbErasureRequests:
        """The table `<dynamodb_table_prefix>erasure-requests` in `settings.aws_region`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).table(TABLE_SUFFIX))

    def add(self, request: ErasureRequest) -> None:
        self.client.put_item(
            TableName=self.table_name,
            Item={
                "id": {"S": request.id}, "user": {"N": str(request.user)},
                "customer_token": {"S": request.customer_token}, "requested_by": {"S": request.requested_by},
                "requested_at": {"S": request.requested_at.isoformat()}, "status": {"S": request.status},
            },
            ConditionExpression="attribute_not_exists(id)",
        )  # fmt: skip

    def get(self, request_id: str) -> ErasureRequest | None:
        item = self.client.get_item(
            TableName=self.table_name, Key={"id": {"S": request_id}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None
        request = ErasureRequest(
            item["id"]["S"], int(item["user"]["N"]), item["customer_token"]["S"], item["requested_by"]["S"],
            datetime.fromisoformat(item["requested_at"]["S"]), item["status"]["S"],
        )  # fmt: skip
        if "confirmed_by" in item:
            request = replace(
                request,
                confirmed_by=item["confirmed_by"]["S"],
                confirmed_at=datetime.fromisoformat(item["confirmed_at"]["S"]),
            )
        return request

    def move(
        self, request_id: str, from_status: str, to_status: str, by: str | None, at: datetime | None
    ) -> bool:
        values: dict[str, Any] = {":to": {"S": to_status}, ":from": {"S": from_status}}
        update = "SET #s = :to"
        if by is not None and at is not None:
            update += ", confirmed_by = :by, confirmed_at = :at"
            values |= {":by": {"S": by}, ":at": {"S": at.isoformat()}}
        elif to_status == PENDING:
            update += " REMOVE confirmed_by, confirmed_at"
        try:
            self.client.update_item(
                TableName=self.table_name, Key={"id": {"S": request_id}}, UpdateExpression=update,
                ConditionExpression="#s = :from", ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=values,
            )  # fmt: skip
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True
