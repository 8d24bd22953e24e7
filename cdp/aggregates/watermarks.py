"""What an aggregate table was last built from: a fingerprint of each month partition of its source.

A source table partitioned by `year`/`month` (the event's month) is listed through the object store; each
partition's fingerprint is a hash of its objects' keys, sizes and etags, so a file added, rewritten or
deleted changes it. The watermark of an aggregate holds the fingerprints of the listing taken *before* its
last build and a hash of its SQL; it is stored beside the aggregate tables, in
`s3://<lake bucket>/dashboards/_watermarks/<table>.json`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cdp.aggregates.locations import AGGREGATES_PREFIX
from cdp.objectstore.port import ObjectNotFoundError, ObjectStoreError

if TYPE_CHECKING:
    from cdp.objectstore.port import ObjectInfo, ObjectStore

MONTH_KEYS = ("year", "month")
WATERMARKS_FOLDER = "_watermarks"
FORMAT = 1  # bump when the watermark's meaning changes: every aggregate is then rebuilt in full

_PARTITION = re.compile(r"^year=(\d{1,4})/month=(\d{1,2})/[^/]+$")

Month = tuple[int, int]  # (year, month)


@dataclass(frozen=True)
class MonthListing:
    """The objects of a table partitioned by month, per `(year, month)`."""

    objects: dict[Month, tuple[ObjectInfo, ...]]

    def fingerprints(self) -> dict[Month, str]:
        """Each month's fingerprint: a hash of its objects' keys, sizes and etags."""
        return {
            month: hashlib.sha256(
                "\n".join(sorted(f"{o.uri}\t{o.size}\t{o.etag}" for o in objects)).encode()
            ).hexdigest()[:32]
            for month, objects in self.objects.items()
        }

    def size(self, months: set[Month]) -> int:
        """Bytes stored in `months`."""
        return sum(o.size for m in months for o in self.objects.get(m, ()))


def list_months(store: ObjectStore, location: str) -> MonthListing | None:
    """The objects of each `year=Y/month=M/` partition under `location`; None when an object lies outside
    such a partition (the table cannot then be refreshed month by month)."""
    prefix = location if location.endswith("/") else location + "/"
    objects: dict[Month, list[ObjectInfo]] = {}
    for info in store.list(prefix):
        match = _PARTITION.match(info.uri[len(prefix) :])
        if match is None:
            return None
        objects.setdefault((int(match.group(1)), int(match.group(2))), []).append(info)
    return MonthListing({month: tuple(found) for month, found in objects.items()})


def changed_months(before: dict[Month, str], now: dict[Month, str]) -> set[Month]:
    """The months whose objects were added, rewritten or deleted between the two listings."""
    return {m for m in before.keys() | now.keys() if before.get(m) != now.get(m)}


@dataclass(frozen=True)
class Watermark:
    """What aggregate `table` was built from: its SQL's hash and its source's month fingerprints."""

    sql_hash: str
    months: dict[Month, str]

    def to_json(self) -> bytes:
        months = {f"{y:04d}-{m:02d}": f for (y, m), f in sorted(self.months.items())}
        return json.dumps({"format": FORMAT, "sql_hash": self.sql_hash, "months": months}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Watermark | None:
        """The watermark in `data`; None when it is not one of this format."""
        try:
            doc = json.loads(data)
            if doc.get("format") != FORMAT:
                return None
            months = {(int(k[:4]), int(k[5:7])): str(v) for k, v in doc["months"].items()}
            return cls(str(doc["sql_hash"]), months)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def sql_hash(sql: str) -> str:
    """The hash an aggregate's watermark keeps of its SQL (a changed definition means a full rebuild)."""
    return hashlib.sha256(sql.encode()).hexdigest()[:32]


def watermark_uri(bucket: str, table: str) -> str:
    return f"s3://{bucket}/{AGGREGATES_PREFIX}/{WATERMARKS_FOLDER}/{table}.json"


def load_watermark(store: ObjectStore, bucket: str, table: str) -> Watermark | None:
    """The stored watermark of `table` (None when there is none or it cannot be read)."""
    try:
        return Watermark.from_json(store.get_bytes(watermark_uri(bucket, table)))
    except (ObjectNotFoundError, ObjectStoreError, OSError):
        return None


def save_watermark(store: ObjectStore, bucket: str, table: str, watermark: Watermark) -> None:
    store.put_bytes(watermark_uri(bucket, table), watermark.to_json())


def forget_watermark(store: ObjectStore, bucket: str, table: str) -> None:
    """Drop `table`'s watermark: its next refresh is a full rebuild."""
    try:
        store.delete(watermark_uri(bucket, table))
    except (ObjectNotFoundError, ObjectStoreError, OSError):
        pass
