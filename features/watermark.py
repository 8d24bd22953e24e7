"""What a features table was computed from, and which of its months a refresh must recompute.

After every build, `<lake>/_manifests/features/<table>.json` records the view's version (the digest of its
committed SQL) and fingerprints of its sources as they were when the build started: one per
`year=/month=` partition of `transactions` (a digest of its objects' keys, sizes and ETags: the object
store changes an ETag whenever an object is rewritten; no data is read) and one per card of the `cards`
columns the view reads (a small table, read whole). The manifest is written after the table, from
fingerprints taken before its query ran, so it never claims rows the table does not hold: a crash leaves
an older manifest (more is recomputed next time) or none (a full build).

A refresh compares the manifest with the sources now (`plan_refresh`):
- no manifest, another format or view version, objects outside the month partitions: full rebuild;
- no change: nothing to do;
- months of transactions changed: the months from the oldest changed one on are recomputed (rows of a
  month read the earlier months only), unless that span is longer than `features_refresh_max_months`
  (e.g. rows rewritten in an old month): then a full rebuild, whose bucketed build bounds memory;
- cards changed or gone (an erasure rewrites `cards`): their card attributes are joined again in the
  older months holding their rows (the other columns never read `cards`).
Why a manifest of fingerprints rather than a high-water mark of (ts, event_seq): the stream's lake sink
lands late events in older months, and an erasure or a re-load rewrites files; comparing what each
partition holds catches all of it, where a high-water mark would silently keep stale rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cdp.backends import Backends
from cdp.objectstore.port import ObjectNotFoundError

FORMAT = 1
SOURCE = "transactions"
LOOKUP = "cards"
_MONTH = re.compile(r"(?:^|/)year=(\d+)/month=(\d+)/")

Month = tuple[int, int]


@dataclass(frozen=True)
class Sources:
    """Fingerprints of the sources: per (year, month) of transactions, and per card of the `cards`
    columns the view reads (None: a source holds objects outside its partitions, or is not registered)."""

    months: dict[Month, str] | None
    cards: dict[str, str] | None

    def to_dict(self) -> dict[str, Any]:
        months = (
            None if self.months is None else {f"{y}-{m:02d}": d for (y, m), d in sorted(self.months.items())}
        )
        return {"transactions": months, "cards": self.cards}


@dataclass(frozen=True)
class RefreshPlan:
    """`full`, `incremental` or `unchanged`, and why. An incremental refresh recomputes `months` (from the
    oldest changed month of transactions on) and re-joins the card attributes of `cards` (whose row in
    the cards table changed or went, e.g. at an erasure) in the older months `patched`."""

    mode: str
    reason: str
    sources: Sources
    months: tuple[Month, ...] = field(default=())
    patched: tuple[Month, ...] = field(default=())
    cards: tuple[str, ...] = field(default=())


def manifest_uri(backends: Backends, table: str) -> str:
    return f"s3://{backends.settings.lake_bucket}/_manifests/features/{table}.json"


def _digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(lines)).encode("utf-8")).hexdigest()[:32]


def _location(backends: Backends, name: str) -> str | None:
    return next((t.location for t in backends.catalog.tables() if t.name == name), None)


def source_fingerprints(backends: Backends) -> Sources:
    """The sources' fingerprints now (object listings only: no data is read)."""
    months: dict[Month, list[str]] | None = {}
    location = _location(backends, SOURCE)
    if location is None:
        months = None
    else:
        for obj in backends.object_store.list(location):
            key = obj.uri[len(location) :] if obj.uri.startswith(location) else obj.uri
            match = _MONTH.search(key)
            if match is None:
                months = None
                break
            months.setdefault((int(match[1]), int(match[2])), []).append(f"{key} {obj.size} {obj.etag}")
    return Sources(
        None if months is None else {m: _digest(v) for m, v in months.items()}, card_digests(backends)
    )


def card_digests(backends: Backends) -> dict[str, str] | None:
    """A digest per card of the `cards` columns the view's card attributes read (a small table: its rows
    are read, so only a change of what the features use counts)."""
    from features.incremental import card_columns

    if _location(backends, LOOKUP) is None:
        return None
    columns = card_columns()
    rows = backends.catalog.query(f"SELECT card_token, {', '.join(columns)} FROM {LOOKUP}").to_pylist()
    return {
        r["card_token"]: hashlib.sha256(repr([r[c] for c in columns]).encode()).hexdigest()[:16] for r in rows
    }


def read_manifest(backends: Backends, table: str) -> dict[str, Any] | None:
    try:
        return json.loads(backends.object_store.get_bytes(manifest_uri(backends, table)))
    except (ObjectNotFoundError, ValueError):
        return None


def write_manifest(
    backends: Backends, table: str, view_version: str, sources: Sources, rows: int, mode: str
) -> None:
    body = {
        "format": FORMAT,
        "table": table,
        "view_version": view_version,
        "sources": sources.to_dict(),
        "rows": rows,
        "mode": mode,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    backends.object_store.put_bytes(manifest_uri(backends, table), json.dumps(body, indent=1).encode())


def _month_index(month: Month) -> int:
    return month[0] * 12 + month[1] - 1


def plan_refresh(backends: Backends, table: str, view_version: str) -> RefreshPlan:
    """What a refresh of `table` (an event view's features) must do, given its manifest and the sources."""
    sources = source_fingerprints(backends)
    manifest = read_manifest(backends, table)

    def full(reason: str) -> RefreshPlan:
        return RefreshPlan("full", reason, sources)

    if manifest is None or manifest.get("format") != FORMAT:
        return full("no build manifest")
    if manifest.get("view_version") != view_version:
        return full("the view's definition changed")
    if table not in {t.name for t in backends.catalog.tables()}:
        return full("the table is not registered")
    if sources.months is None or sources.cards is None:
        return full("a source is missing or holds objects outside its month partitions")
    built = manifest.get("sources", {})
    before_cards: dict[str, str] = built.get("cards") or {}
    if not isinstance(before_cards, dict):
        return full("the manifest has no per-card fingerprints")
    cards = sorted(
        c for c in before_cards.keys() | sources.cards.keys() if before_cards.get(c) != sources.cards.get(c)
    )
    before: dict[Month, str] = {
        (int(k.split("-")[0]), int(k.split("-")[1])): v for k, v in (built.get("transactions") or {}).items()
    }
    changed = {m for m in before.keys() | sources.months.keys() if before.get(m) != sources.months.get(m)}
    if not changed and not cards:
        return RefreshPlan("unchanged", "no source partition changed", sources)
    months: list[Month] = []
    if changed:
        first = min(changed, key=_month_index)
        months = sorted(
            (m for m in before.keys() | sources.months.keys() if _month_index(m) >= _month_index(first)),
            key=_month_index,
        )
        span = _month_index(months[-1]) - _month_index(first) + 1
        limit = backends.settings.features_refresh_max_months
        if span > limit:
            return full(f"{span} months from the oldest changed one, more than {limit}")
    patched: list[Month] = []
    if cards:
        patched = [m for m in _months_of_cards(backends, table, cards) if m not in months]
    reason = f"{len(changed)} changed month(s)" + (
        f", from {months[0][0]}-{months[0][1]:02d}" if months else ""
    )
    if cards:
        reason += f"; {len(cards)} card(s) changed in cards, re-joined in {len(patched)} older month(s)"
    return RefreshPlan("incremental", reason, sources, tuple(months), tuple(patched), tuple(cards))


def _months_of_cards(backends: Backends, table: str, cards: list[str]) -> list[Month]:
    """The months of the features table holding rows of these cards."""
    listed = ", ".join("'" + c.replace("'", "''") + "'" for c in cards)
    rows = backends.catalog.query(
        f"SELECT DISTINCT year, month FROM {table} WHERE card_token IN ({listed}) ORDER BY year, month"
    ).to_pylist()
    return [(int(r["year"]), int(r["month"])) for r in rows]
