"""AWS checkpoint store: one S3 object per checkpoint, written once (`If-None-Match: *`).

Keys count down (`<prefix><10^19 - count>.json`) so the newest checkpoint is the first key S3 lists: one
LIST (MaxKeys=1) and one GET find it. Meant for a bucket of its own with versioning and Object Lock
(compliance mode), where the platform's role may put objects but never delete or overwrite them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.security.audit.checkpoints.port import Checkpoint, CheckpointUnreadable
from cdp.security.audit.port import AuditIntegrityError

if TYPE_CHECKING:
    from cdp.settings import Settings

PREFIX = "audit-checkpoints/"
_TOP = 10**19


class S3Checkpoints:
    """`AuditCheckpoints` as write-once S3 objects under `prefix` in `bucket`."""

    def __init__(self, client: Any, bucket: str, prefix: str = PREFIX) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix

    def key(self, count: int) -> str:
        return f"{self.prefix}{_TOP - count:020d}.json"

    def append(self, checkpoint: Checkpoint) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(checkpoint.count),
                Body=checkpoint.to_json().encode(),
                ContentType="application/json",
                IfNoneMatch="*",  # never replace a checkpoint
            )
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in (
                "PreconditionFailed",
                "ConditionalRequestConflict",
            ):
                raise AuditIntegrityError(
                    f"a checkpoint for {checkpoint.count} audit records exists already (log rolled back?)"
                ) from None
            raise

    def latest(self) -> Checkpoint | None:
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)
        contents = listed.get("Contents") or []
        if not contents:
            return None
        body = self.client.get_object(Bucket=self.bucket, Key=contents[0]["Key"])["Body"].read()
        cp = Checkpoint.from_json(body)
        if contents[0]["Key"] != self.key(cp.count):
            raise CheckpointUnreadable(f"checkpoint object {contents[0]['Key']} holds count {cp.count}")
        return cp

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Checkpoints:
        """The Object Lock bucket `settings.audit_checkpoint_bucket` in `settings.aws_region`."""
        from cdp.aws_clients import aws_client
        from cdp.aws_resources import AwsResources

        client = aws_client(settings, "s3")
        return cls(client, AwsResources.from_settings(settings).audit_checkpoint_bucket)
