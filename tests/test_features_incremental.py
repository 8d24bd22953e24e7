"""The fraud features table refreshed after new events land equals a full rebuild, row for row; a refresh
falls back to a full rebuild when its manifest cannot vouch for the old rows; a failed refresh leaves
the old table and manifest as they were."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cdp.backends import Backends
from cdp.catalog.local import DuckDbCatalog
from cdp.catalog.port import CatalogError
from features.fraud import FRAUD_VIEW
from features.incremental import incremental_sql, tail_start
from features.materialize import features_table_name, materialize_view
from features.sample import sample_cards, sample_transactions, write_sample_lake
from features.views import view_sql
from features.watermark import manifest_uri

EVENTS, CARDS = 9_000, 150
TABLE = features_table_name("fraud_card")
ORDERED = f"SELECT * FROM {TABLE} ORDER BY txn_id"


def _split(events: pa.Table, share_new: float) -> tuple[pa.Table, pa.Table]:
    """(older rows, the newest `share_new` of the rows by time): the new ones land in the newest months."""
    cut = sorted(events["ts"].to_pylist())[int(events.num_rows * (1 - share_new))]
    new = pc.greater_equal(events["ts"], pa.scalar(cut, events["ts"].type))
    return events.filter(pc.invert(new)), events.filter(new)


def _backends(tmp_path, max_months: int = 120) -> Backends:
    from cdp.settings import Settings

    return Backends(Settings(home=tmp_path / "home", features_refresh_max_months=max_months))


@pytest.fixture
def lake(tmp_path):
    """A sample lake holding the older rows, its features table built (full, with its manifest), and the
    newest rows still to land."""
    backends = _backends(tmp_path)
    events = sample_transactions(EVENTS, CARDS, seed=11, days=300)
    old, new = _split(events, 0.08)
    write_sample_lake(backends, old, sample_cards(CARDS, seed=11))
    first = materialize_view(backends, "fraud_card")
    assert first["mode"] == "full" and first["rows"] == old.num_rows
    return backends, new


def _full_rebuild_rows(backends: Backends) -> list[dict]:
    built = materialize_view(backends, "fraud_card", full=True)
    assert built["mode"] == "full"
    return backends.catalog.query(ORDERED).to_pylist()


def test_a_refresh_after_new_events_recomputes_the_newest_months_and_equals_a_full_rebuild(lake):
    backends, new = lake
    write_sample_lake(backends, new, None, chunk="1")
    refreshed = materialize_view(backends, "fraud_card")
    assert refreshed["mode"] == "incremental"
    assert refreshed["rows"] == EVENTS
    assert 0 < refreshed["rows_written"] < EVENTS // 2  # the newest months only
    rows = backends.catalog.query(ORDERED).to_pylist()
    # not trivial: the recomputed rows read history older than the tail
    assert sum(r["amount_zscore"] is not None for r in rows[-100:]) > 0
    assert rows == _full_rebuild_rows(backends)  # every column, exact
    again = materialize_view(backends, "fraud_card")
    assert again["mode"] == "unchanged" and again["rows"] == EVENTS


def test_the_incremental_sql_equals_the_full_view_from_any_month(tmp_path):
    backends = _backends(tmp_path)
    write_sample_lake(
        backends, sample_transactions(EVENTS, CARDS, seed=3, days=300), sample_cards(CARDS, seed=3)
    )
    materialize_view(backends, "fraud_card")
    months = backends.catalog.query(
        f"SELECT DISTINCT year, month FROM {TABLE} ORDER BY year, month"
    ).to_pylist()
    for m in (months[0], months[len(months) // 2], months[-2]):
        first = (m["year"], m["month"])
        got = backends.catalog.query(
            f"SELECT * FROM ({incremental_sql(FRAUD_VIEW, view_sql('fraud_card'), first)}) ORDER BY txn_id"
        )
        want = backends.catalog.query(
            f"SELECT * FROM {TABLE} WHERE year * 12 + month >= {first[0] * 12 + first[1]} ORDER BY txn_id"
        )
        assert got.num_rows == want.num_rows > 0
        assert got.equals(want.select(got.schema.names)), first


def test_the_tail_starts_the_longest_window_before_the_first_month():
    assert tail_start(FRAUD_VIEW, (2020, 1)) == 1577836800 - 30 * 86_400


def _manifest(backends: Backends) -> dict:
    return json.loads(backends.object_store.get_bytes(manifest_uri(backends, TABLE)))


def test_a_changed_view_definition_rebuilds_in_full(lake):
    backends, new = lake
    manifest = _manifest(backends)
    manifest["view_version"] = "fraud_card@000000000000"
    backends.object_store.put_bytes(manifest_uri(backends, TABLE), json.dumps(manifest).encode())
    write_sample_lake(backends, new, None, chunk="1")
    built = materialize_view(backends, "fraud_card")
    assert built["mode"] == "full" and "definition" in built["reason"]
    assert _manifest(backends)["view_version"] not in ("fraud_card@000000000000", None)


def test_cards_gone_at_an_erasure_are_rejoined_in_older_months_and_equal_a_full_rebuild(lake):
    backends, new = lake
    cards = sample_cards(CARDS, seed=11)
    erased = cards.filter(pc.is_in(cards["card_token"], pa.array(["crd_s000007", "crd_s000008"])))
    kept = cards.filter(pc.invert(pc.is_in(cards["card_token"], erased["card_token"])))
    write_sample_lake(backends, new, kept, chunk="1")  # new events, and two cards' rows gone
    refreshed = materialize_view(backends, "fraud_card")
    assert refreshed["mode"] == "incremental" and "2 card(s)" in refreshed["reason"]
    assert refreshed["months_card_attributes_rejoined"] > 0
    rows = backends.catalog.query(ORDERED).to_pylist()
    gone = [r for r in rows if r["card_token"] in ("crd_s000007", "crd_s000008")]
    assert gone and all(r["credit_limit"] is None for r in gone)
    assert rows == _full_rebuild_rows(backends)
    # only cards changed: the older months are re-joined, nothing recomputed
    write_sample_lake(
        backends, pa.table({c: [] for c in new.schema.names}, schema=new.schema), cards, chunk="2"
    )
    again = materialize_view(backends, "fraud_card")
    assert again["mode"] == "incremental" and "months" not in again
    assert backends.catalog.query(ORDERED).to_pylist() == _full_rebuild_rows(backends)


def test_a_missing_manifest_rebuilds_in_full(lake):
    backends, _ = lake
    backends.object_store.delete(manifest_uri(backends, TABLE))
    built = materialize_view(backends, "fraud_card")
    assert built["mode"] == "full" and "manifest" in built["reason"]
    assert materialize_view(backends, "fraud_card")["mode"] == "unchanged"


def test_an_old_month_rewritten_beyond_the_limit_rebuilds_in_full(tmp_path):
    backends = _backends(tmp_path, max_months=2)
    events = sample_transactions(EVENTS, CARDS, seed=11, days=300)
    write_sample_lake(backends, events, sample_cards(CARDS, seed=11))
    materialize_view(backends, "fraud_card")
    root = backends.object_store.local_path(f"s3://{backends.settings.lake_bucket}/transactions/")
    oldest = sorted(root.glob("year=*/month=*"), key=lambda p: (int(p.parent.name[5:]), int(p.name[6:])))[0]
    victim = next(oldest.glob("*.parquet"))
    kept = pa.parquet.read_table(victim).slice(1)  # an erasure-like rewrite: one row fewer
    victim.unlink()
    pa.parquet.write_table(kept, victim)
    built = materialize_view(backends, "fraud_card")
    assert built["mode"] == "full" and "more than 2" in built["reason"]
    assert built["rows"] == EVENTS - 1


def test_a_failed_refresh_leaves_the_old_table_and_manifest(lake, monkeypatch):
    backends, new = lake
    before_rows = backends.catalog.query(ORDERED).to_pylist()
    before_manifest = _manifest(backends)
    write_sample_lake(backends, new, None, chunk="1")

    def crash(*args, **kwargs):
        raise CatalogError("disk full")

    monkeypatch.setattr(DuckDbCatalog, "_copy", staticmethod(crash))
    with pytest.raises(CatalogError):
        materialize_view(backends, "fraud_card")
    monkeypatch.undo()
    assert backends.catalog.query(ORDERED).to_pylist() == before_rows
    assert _manifest(backends) == before_manifest
    root = backends.object_store.local_path(f"s3://{backends.settings.lake_bucket}/{TABLE}/")
    assert not root.with_name(root.name + ".parts").exists()
    # the next refresh still knows what changed
    refreshed = materialize_view(backends, "fraud_card")
    assert refreshed["mode"] == "incremental"
    assert backends.catalog.query(ORDERED).to_pylist() == _full_rebuild_rows(backends)


def test_the_incremental_sql_translates_to_athena():
    from cdp.catalog.dialect import parses_as_trino, to_athena

    assert parses_as_trino(to_athena(incremental_sql(FRAUD_VIEW, view_sql("fraud_card"), (2019, 10))))
