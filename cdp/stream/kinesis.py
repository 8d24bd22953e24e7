"""AWS adapter of the stream port: a thin layer over the Kinesis API, checkpoints in DynamoDB.

Retention is the stream's own setting in Kinesis (24 h by default); there is no trim call here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.stream.dynamodb_checkpoints import DynamoDbCheckpoints
from cdp.stream.port import (
    MAX_RECORDS_PER_GET,
    ExpiredIteratorError,
    GetRecordsResult,
    InvalidIteratorError,
    IteratorType,
    PutRecordResult,
    PutResult,
    Record,
    ShardInfo,
    ShardNotFoundError,
    StreamRecord,
    validate_batch,
    validate_sequence_number,
)

if TYPE_CHECKING:
    from cdp.settings import Settings


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class KinesisStream:
    """The stream port over an existing Kinesis stream (`client` is a boto3 Kinesis client)."""

    def __init__(self, client: Any, stream_name: str, checkpoints: DynamoDbCheckpoints) -> None:
        self._client = client
        self.stream_name = stream_name
        self._checkpoints = checkpoints

    @classmethod
    def from_settings(cls, settings: Settings) -> KinesisStream:
        """Kinesis stream `settings.stream_name`; checkpoints in table `<prefix>stream-checkpoints`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import STREAM_CHECKPOINTS_TABLE, AwsResources

        names = AwsResources.from_settings(settings)

        checkpoints = DynamoDbCheckpoints(
            aws_client(settings, "dynamodb"),
            names.table(STREAM_CHECKPOINTS_TABLE),
            names.stream,
        )
        return cls(aws_client(settings, "kinesis"), names.stream, checkpoints)

    def put_records(self, records: list[Record]) -> PutResult:
        validate_batch(records)
        response = self._client.put_records(
            StreamName=self.stream_name,
            Records=[{"PartitionKey": r.partition_key, "Data": bytes(r.data)} for r in records],
        )
        results = [
            PutRecordResult(
                shard_id=entry.get("ShardId"),
                sequence_number=entry.get("SequenceNumber"),
                error_code=entry.get("ErrorCode"),
                error_message=entry.get("ErrorMessage"),
            )
            for entry in response["Records"]
        ]
        return PutResult(results, int(response.get("FailedRecordCount", 0)))

    def list_shards(self) -> list[ShardInfo]:
        shards: list[ShardInfo] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            response = self._client.list_shards(**kwargs)
            for shard in response["Shards"]:
                if "EndingSequenceNumber" in shard.get("SequenceNumberRange", {}):
                    continue  # closed by a reshard: its records are still readable by id, not listed
                key_range = shard["HashKeyRange"]
                shards.append(
                    ShardInfo(
                        shard["ShardId"], int(key_range["StartingHashKey"]), int(key_range["EndingHashKey"])
                    )
                )
            token = response.get("NextToken")
            if not token:
                return sorted(shards, key=lambda s: s.shard_id)
            kwargs = {"NextToken": token}

    def get_shard_iterator(
        self,
        shard_id: str,
        iterator_type: IteratorType | str,
        sequence_number: str | None = None,
        timestamp: datetime | None = None,
    ) -> str:
        kind = IteratorType(iterator_type)
        kwargs: dict[str, Any] = {
            "StreamName": self.stream_name,
            "ShardId": shard_id,
            "ShardIteratorType": kind.value,
        }
        if kind in (IteratorType.AT_SEQUENCE_NUMBER, IteratorType.AFTER_SEQUENCE_NUMBER):
            validate_sequence_number(sequence_number, kind.value)
            kwargs["StartingSequenceNumber"] = str(sequence_number)
        elif kind is IteratorType.AT_TIMESTAMP:
            if timestamp is None:
                raise ValueError("AT_TIMESTAMP needs a timestamp")
            kwargs["Timestamp"] = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        try:
            return str(self._client.get_shard_iterator(**kwargs)["ShardIterator"])
        except ClientError as error:
            if _error_code(error) == "ResourceNotFoundException":
                raise ShardNotFoundError(f"stream {self.stream_name!r} has no shard {shard_id!r}") from None
            raise

    def get_records(self, iterator: str, limit: int = MAX_RECORDS_PER_GET) -> GetRecordsResult:
        if not 1 <= limit <= MAX_RECORDS_PER_GET:
            raise ValueError(f"limit must be within 1..{MAX_RECORDS_PER_GET}")
        try:
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
        except ClientError as error:
            code = _error_code(error)
            if code == "ExpiredIteratorException":
                raise ExpiredIteratorError("shard iterator expired") from None
            if code in ("InvalidArgumentException", "ResourceNotFoundException"):
                raise InvalidIteratorError("not a shard iterator of this stream") from None
            raise
        records = [
            StreamRecord(
                sequence_number=r["SequenceNumber"],
                approximate_arrival_timestamp=r["ApproximateArrivalTimestamp"],
                partition_key=r["PartitionKey"],
                data=bytes(r["Data"]),
            )
            for r in response["Records"]
        ]
        return GetRecordsResult(
            records, response.get("NextShardIterator"), int(response.get("MillisBehindLatest", 0))
        )

    def checkpoint(self, consumer: str, shard_id: str, sequence_number: str) -> None:
        validate_sequence_number(sequence_number, "checkpoint")
        self._checkpoints.put(consumer, shard_id, sequence_number)

    def get_checkpoint(self, consumer: str, shard_id: str) -> str | None:
        return self._checkpoints.get(consumer, shard_id)
