"""AWS audit log: the same keyed MAC chain, its records in a DynamoDB table, its signed heads in S3.

Table: partition key `log` (S, one fixed id per log), sort key `seq` (N). Record items hold seq 1, 2, ...;
the item at seq 0 is the log's head (`head_seq`, `head_hash`): a concurrency device only, never trusted for
integrity (the signed checkpoints are). `fields` and `details` are stored as canonical JSON strings, so a
record reads back exactly as it was MAC'd.

An append is one transaction of three conditional writes:
- put record N+1 only if no item has that seq (`attribute_not_exists`): nothing is ever overwritten;
- put the head item only if it still says (N, MAC of N) (or does not exist, for the first record): of two
  writers that read the same head, exactly one commits; the other re-reads the head and tries again;
- check that record N still exists with that MAC: nobody appends after a deleted or altered newest record.
So the chain is append-only and never forks, without a lock. The role needs PutItem (no UpdateItem,
DeleteItem or BatchWriteItem), ConditionCheckItem, GetItem and Query on the table.

The checkpoint is signed after the commit, without a lock, so checkpoints of concurrent writers may reach
the store out of order: the store must return the checkpoint with the highest count as `latest()`, as the
S3 store does (its keys sort by count). `verify()` reads the checkpoint first, then the records; records
appended meanwhile are signed a moment later, so before reporting them as unsigned it re-reads the
checkpoint a few times and continues the walk from where it stopped.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from botocore.exceptions import ClientError

from cdp.security.audit.chain import ChainWalk, walk_chain
from cdp.security.audit.chained import ChainedAuditLog, checked_details
from cdp.security.audit.checkpoints.port import AuditCheckpoints
from cdp.security.audit.keys import AuditKeys
from cdp.security.audit.port import GENESIS_HASH, AuditIntegrityError, AuditRecord, VerifyResult

LOG_ID = "cdp"  # partition key value of the platform's audit log
HEAD_SEQ = 0  # sort key of the head item
PARTITION_KEY = "log"
SORT_KEY = "seq"
APPEND_ATTEMPTS = 50  # tries before an append under contention gives up
SETTLE_ATTEMPTS = 5  # checkpoint re-reads by verify() for records appended while it read
SETTLE_DELAY = 0.05  # seconds, times the attempt number


class AuditAppendContention(RuntimeError):
    """Other writers kept appending first; nothing was written by this call."""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _item(log_id: str, record: AuditRecord) -> dict[str, Any]:
    return {
        PARTITION_KEY: {"S": log_id},
        SORT_KEY: {"N": str(record.seq)},
        "ts": {"S": record.ts},
        "actor": {"S": record.actor},
        "role": {"S": record.role},
        "action": {"S": record.action},
        "customer_token": {"S": record.customer_token},
        "fields": {"S": _json(list(record.fields))},
        "outcome": {"S": record.outcome},
        "details": {"S": _json(dict(record.details))},
        "prev_hash": {"S": record.prev_hash},
        "hash": {"S": record.hash},
        "mac_alg": {"S": record.mac_alg},
    }


def _record(item: Mapping[str, Any]) -> AuditRecord:
    """The record an item holds. An item that is not a well-formed record reads as one whose MAC is empty,
    so `verify()` reports it at its seq instead of failing."""

    def text(name: str) -> str:
        value = item.get(name, {}).get("S")
        return value if isinstance(value, str) else ""

    readable = True
    try:
        fields = json.loads(text("fields"))
        details = json.loads(text("details"))
        if not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise ValueError("fields")
        if not isinstance(details, dict):
            raise ValueError("details")
    except ValueError:
        fields, details, readable = [], {}, False
    return AuditRecord(
        seq=int(item[SORT_KEY]["N"]), ts=text("ts"), actor=text("actor"), role=text("role"),
        action=text("action"), customer_token=text("customer_token"), fields=tuple(fields),
        outcome=text("outcome"), details=details, prev_hash=text("prev_hash"),
        hash=text("hash") if readable else "", mac_alg=text("mac_alg"),
    )  # fmt: skip


def _cancellation_codes(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


class DynamoDbAuditLog(ChainedAuditLog):
    """`AuditLog` in the DynamoDB table `table` (a boto3 DynamoDB client), partition `log_id`, checkpoints
    signed into `checkpoints` (which must return the highest count as latest, like `S3Checkpoints`).

    `keys` may be a loader, called on first append or verify (so building the log reaches no key service).
    """

    def __init__(
        self,
        client: Any,
        table: str,
        keys: AuditKeys | Callable[[], AuditKeys],
        checkpoints: AuditCheckpoints,
        log_id: str = LOG_ID,
    ) -> None:
        super().__init__(keys, checkpoints)
        self.client = client
        self.table = table
        self.log_id = log_id
        if isinstance(keys, AuditKeys):
            self._keys  # noqa: B018 - load now: seals a log whose keys were just made

    @classmethod
    def from_settings(
        cls,
        settings: Any,
        keys: AuditKeys | Callable[[], AuditKeys],
        checkpoints: AuditCheckpoints | None = None,
    ) -> DynamoDbAuditLog:
        """The platform's log in table `CDP_AUDIT_TABLE`; checkpoints in `CDP_AUDIT_CHECKPOINT_BUCKET`."""
        from cdp.aws_clients import aws_client

        if checkpoints is None:
            from cdp.security.audit.checkpoints.s3 import S3Checkpoints

            checkpoints = S3Checkpoints.from_settings(settings)
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "dynamodb")
        return cls(client, AwsResources.from_settings(settings).audit_table, keys, checkpoints)

    def create_table(self) -> None:
        """Create the table (on-demand billing) if it does not exist and wait until it is active."""
        try:
            self.client.create_table(
                TableName=self.table,
                KeySchema=[
                    {"AttributeName": PARTITION_KEY, "KeyType": "HASH"},
                    {"AttributeName": SORT_KEY, "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": PARTITION_KEY, "AttributeType": "S"},
                    {"AttributeName": SORT_KEY, "AttributeType": "N"},
                ],
                BillingMode="PAY_PER_REQUEST",
            )
        except self.client.exceptions.ResourceInUseException:
            pass
        self.client.get_waiter("table_exists").wait(TableName=self.table)

    # -- storage ----------------------------------------------------------------------------------------
    def _key(self, seq: int) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": self.log_id}, SORT_KEY: {"N": str(seq)}}

    def _head(self) -> tuple[int, str]:
        """(seq, MAC) of the newest record as the head item says; (0, genesis) before the first."""
        item = self.client.get_item(TableName=self.table, Key=self._key(HEAD_SEQ), ConsistentRead=True).get(
            "Item"
        )
        if item is None:
            return 0, GENESIS_HASH
        return int(item["head_seq"]["N"]), item["head_hash"]["S"]

    def _rows(self, after: int = HEAD_SEQ) -> Iterator[AuditRecord]:
        """Records with seq > `after` in seq order (strongly consistent, page by page)."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#log = :log AND #seq > :after",
            "ExpressionAttributeNames": {"#log": PARTITION_KEY, "#seq": SORT_KEY},
            "ExpressionAttributeValues": {":log": {"S": self.log_id}, ":after": {"N": str(max(after, 0))}},
            "ConsistentRead": True,
        }
        while True:
            page = self.client.query(**query)
            for item in page.get("Items", []):
                yield _record(item)
            if "LastEvaluatedKey" not in page:
                return
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _hash_at(self, seq: int) -> str | None:
        item = self.client.get_item(TableName=self.table, Key=self._key(seq), ConsistentRead=True).get("Item")
        return None if item is None else item.get("hash", {}).get("S")

    def _seal(self, keys: AuditKeys) -> None:
        self._seal_unsigned(keys, self._rows())

    def _commit(self, record: AuditRecord, head_seq: int, head: str) -> bool:
        """Write `record` after the head `(head_seq, head)`; False if another writer moved the head first."""
        names = {"#seq": SORT_KEY}
        new_head = {
            **self._key(HEAD_SEQ),
            "head_seq": {"N": str(record.seq)},
            "head_hash": {"S": record.hash},
        }
        if head_seq == 0:
            head_put = {
                "ConditionExpression": "attribute_not_exists(#seq)",
                "ExpressionAttributeNames": names,
            }
        else:
            head_put = {
                "ConditionExpression": "head_seq = :seq AND head_hash = :hash",
                "ExpressionAttributeValues": {":seq": {"N": str(head_seq)}, ":hash": {"S": head}},
            }
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.table,
                    "Item": _item(self.log_id, record),
                    "ConditionExpression": "attribute_not_exists(#seq)",
                    "ExpressionAttributeNames": names,
                }
            },
            {"Put": {"TableName": self.table, "Item": new_head, **head_put}},
        ]
        if head_seq > 0:
            items.append(
                {
                    "ConditionCheck": {
                        "TableName": self.table,
                        "Key": self._key(head_seq),
                        "ConditionExpression": "attribute_exists(#seq) AND #hash = :hash",
                        "ExpressionAttributeNames": {**names, "#hash": "hash"},
                        "ExpressionAttributeValues": {":hash": {"S": head}},
                    }
                }
            )
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(e)
            if len(codes) > 2 and codes[2] == "ConditionalCheckFailed":
                raise AuditIntegrityError(
                    f"audit record {head_seq} is missing or differs from the log's head (deleted or altered)"
                ) from None
            return False  # the head moved (or a conflicting transaction ran): re-read and try again
        return True

    # -- the port ---------------------------------------------------------------------------------------
    def append(
        self,
        *,
        actor: str,
        role: str,
        action: str,
        customer_token: str,
        fields: Sequence[str],
        outcome: str,
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        content = {
            "actor": actor, "role": role, "action": action, "customer_token": customer_token,
            "fields": fields, "outcome": outcome, "details": checked_details(details),
        }  # fmt: skip
        self._keys  # noqa: B018 - loaded (and a new log sealed) first
        for attempt in range(APPEND_ATTEMPTS):
            head_seq, head = self._head()
            if self._covered != (head_seq, head):
                checkpoint = self.checkpoints.latest()
                head_seq, head = self._head()  # read after the checkpoint, so it is at least as new
                self._check_head(head_seq, head, self._rows, checkpoint)
            record = self._next_record(head_seq, head, **content)
            if self._commit(record, head_seq, head):
                self._sign(record)
                return record
            time.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
        raise AuditAppendContention(f"audit append lost to other writers {APPEND_ATTEMPTS} times")

    def records(self) -> Iterator[AuditRecord]:
        return self._rows()

    def verify(self) -> VerifyResult:
        """Every record's MAC and the chain, then the head against the latest signed checkpoint (read
        before the records, so it never covers more than was read)."""
        keys = self._keys
        cp, problem = self._latest_checkpoint()
        walk = walk_chain(self._rows(), keys.mac_key, mark=cp.count if cp else None, allow_legacy=False)
        for attempt in range(1, SETTLE_ATTEMPTS + 1):
            if not (walk.ok and problem is None and cp is not None and walk.records > cp.count):
                break
            time.sleep(SETTLE_DELAY * attempt)  # records read beyond the checkpoint may be signed by now
            newer, problem = self._latest_checkpoint()
            if newer is None or problem is not None:
                cp = newer
                break
            if newer.count <= cp.count:
                continue
            if newer.count <= walk.records:  # the walk checked that record: its stored MAC is its chain value
                walk = ChainWalk(True, walk.records, None, None, walk.head, 0, self._hash_at(newer.count))
            else:  # the log grew past what was read: walk on from there
                more = walk_chain(
                    self._rows(walk.records), keys.mac_key, start_seq=walk.records + 1, prev=walk.head,
                    mark=newer.count, allow_legacy=False,
                )  # fmt: skip
                walk = ChainWalk(
                    more.ok, walk.records + more.records, more.first_broken_seq, more.reason, more.head, 0,
                    more.marked,
                )  # fmt: skip
            cp = newer
        return self._verdict(walk, cp, problem)

    def close(self) -> None:
        """Nothing to release (the client is shared)."""
