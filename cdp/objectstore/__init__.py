"""The object-store port (S3 semantics) with a local-folder adapter and an S3 adapter."""

from cdp.objectstore.port import (
    InvalidUriError,
    ObjectInfo,
    ObjectNotFoundError,
    ObjectStore,
    join_uri,
    split_uri,
)

__all__ = ["InvalidUriError", "ObjectInfo", "ObjectNotFoundError", "ObjectStore", "join_uri", "split_uri"]
