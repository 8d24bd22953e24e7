"""AWS adapter of the object-store port: S3 through a boto3 client (puts are atomic in S3 itself)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from cdp.objectstore.port import ObjectInfo, ObjectNotFoundError, join_uri, split_uri

if TYPE_CHECKING:
    from cdp.settings import Settings

_MISSING = {"404", "NoSuchKey", "NotFound"}


def _is_missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code", "")) in _MISSING


class S3ObjectStore:
    """The object-store port over S3 (`client` is a boto3 S3 client)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3ObjectStore:
        from cdp.aws_clients import aws_client

        return cls(aws_client(settings, "s3"))

    def put_bytes(self, uri: str, data: bytes) -> None:
        bucket, key = split_uri(uri)
        self._client.put_object(Bucket=bucket, Key=key, Body=bytes(data))

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = split_uri(uri)
        try:
            return bytes(self._client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except ClientError as error:
            if _is_missing(error):
                raise ObjectNotFoundError(f"no object at {uri}") from None
            raise

    def put_file(self, uri: str, path: Path | str) -> None:
        bucket, key = split_uri(uri)
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no file to upload at {source.name!r}")
        self._client.upload_file(str(source), bucket, key)

    def get_file(self, uri: str, path: Path | str) -> None:
        bucket, key = split_uri(uri)
        destination = Path(path)
        destination.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=".cdp-tmp-", dir=destination.parent)
        os.close(fd)
        try:
            self._client.download_file(bucket, key, temp_name)
            os.replace(temp_name, destination)
        except ClientError as error:
            Path(temp_name).unlink(missing_ok=True)
            if _is_missing(error):
                raise ObjectNotFoundError(f"no object at {uri}") from None
            raise
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise

    def exists(self, uri: str) -> bool:
        bucket, key = split_uri(uri)
        try:
            self._client.head_object(Bucket=bucket, Key=key)
            return True
        except ClientError as error:
            if _is_missing(error):
                return False
            raise

    def list(self, prefix_uri: str) -> Iterator[ObjectInfo]:
        bucket, prefix = split_uri(prefix_uri, allow_empty_key=True)
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    uri=join_uri(bucket, item["Key"]),
                    size=int(item["Size"]),
                    etag=str(item["ETag"]),
                    last_modified=item["LastModified"],
                )

    def delete(self, uri: str) -> None:
        bucket, key = split_uri(uri)
        self._client.delete_object(Bucket=bucket, Key=key)

    def local_path(self, uri: str) -> Path | None:
        split_uri(uri, allow_empty_key=True)
        return None
