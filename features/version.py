"""A feature view's version: what a scored event records so that its features can be recomputed later.

The version is the view's name and a digest of its committed SQL (`sql/<view>.sql`, rendered from the
view's definition: the same definition the online path compiles), e.g. `fraud_card@3f2a9c1d0b7e`. A change
of any feature's definition changes the SQL and so the version.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

DIGEST_CHARS = 12


@lru_cache(maxsize=8)
def view_version(view: str) -> str:
    """`<view>@<first 12 hex digits of the SHA-256 of its committed SQL>`."""
    from features.views import view_sql

    digest = hashlib.sha256(view_sql(view).encode("utf-8")).hexdigest()[:DIGEST_CHARS]
    return f"{view}@{digest}"
