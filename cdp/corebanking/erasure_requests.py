"""Pending erasure requests: the store behind two-person erasure (one privacy officer requests, another
confirms). A request holds the user id (to erase), the customer token (for the audit log), who asked and
when; its status moves pending -> confirming -> done, each step a conditional write, so two confirmations
of one request cannot both run. Adapters: SQLite (mode 0600) here, DynamoDB in AWS.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from botocore.exceptions import ClientError

from cdp.sqlite_connections import ThreadConnections

PENDING = "pending"
CONFIRMING = "confirming"
DONE = "done"
TABLE_SUFFIX = "erasure-requests"


@dataclass(frozen=True)
class ErasureRequest:
    id: str
    user: int
    customer_token: str
    requested_by: str
    requested_at: datetime
    status: str = PENDING
    confirmed_by: str | None = None
    confirmed_at: datetime | None = None


@runtime_checkable
class ErasureRequests(Protocol):
    """Erasure requests by id."""

    def add(self, request: ErasureRequest) -> None: ...

    def get(self, request_id: str) -> ErasureRequest | None: ...

    def move(
        self, request_id: str, from_status: str, to_status: str, by: str | None, at: datetime | None
    ) -> bool:
        """Set the status only if it is `from_status` now; True if this call moved it. `by`/`at` record the
        confirmer; moving back to pending clears them; otherwise they are kept."""
        ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS erasure_requests (
    id TEXT PRIMARY KEY, user INTEGER NOT NULL, customer_token TEXT NOT NULL, requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL, status TEXT NOT NULL, confirmed_by TEXT, confirmed_at TEXT
)
"""
_COLUMNS = "id, user, customer_token, requested_by, requested_at, status, confirmed_by, confirmed_at"


class SqliteErasureRequests:
    """`ErasureRequests` in one SQLite file created with mode 0600."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._connections = ThreadConnections(self.path)
        self._conn().execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._connections.conn()

    def add(self, request: ErasureRequest) -> None:
        self._conn().execute(
            f"INSERT INTO erasure_requests ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, NULL, NULL)",
            (request.id, request.user, request.customer_token, request.requested_by,
             request.requested_at.isoformat(), request.status),
        )  # fmt: skip

    def get(self, request_id: str) -> ErasureRequest | None:
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM erasure_requests WHERE id = ?", (request_id,))
            .fetchone()
        )
        if row is None:
            return None
        return ErasureRequest(
            row[0], int(row[1]), row[2], row[3], datetime.fromisoformat(row[4]), row[5], row[6],
            datetime.fromisoformat(row[7]) if row[7] else None,
        )  # fmt: skip

    def move(
        self, request_id: str, from_status: str, to_status: str, by: str | None, at: datetime | None
    ) -> bool:
        if by is not None or to_status == PENDING:  # a confirmer is set, or cleared on the way back
            sql = "UPDATE erasure_requests SET status = ?, confirmed_by = ?, confirmed_at = ? "
            args: tuple = (to_status, by, at.isoformat() if at and by else None)
        else:
            sql, args = "UPDATE erasure_requests SET status = ? ", (to_status,)
        cur = self._conn().execute(sql + "WHERE id = ? AND status = ?", (*args, request_id, from_status))
        return cur.rowcount == 1


class DynamoDbErasureRequests:
    """`ErasureRequests` over the DynamoDB table `<prefix>erasure-requests` (partition key `id`)."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    @classmethod
    def from_settings(cls, settings: Any) -> DynamoDbErasureRequests:
        import boto3

        client = boto3.client("dynamodb", region_name=settings.aws_region)
        return cls(client, f"{settings.dynamodb_table_prefix}{TABLE_SUFFIX}")

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
