"""Training-set builder: time split skipping unlabelled months, Parquet + manifest in the lake; and the
functions behind `cdp features build` / `cdp features show`."""

from __future__ import annotations

import io
import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from cdp.backends import Backends
from cdp.online.local import LocalOnlineStore
from features import training
from features.asof_online import OnlineAsOfFeatures
from features.commands import build, show_card, show_customer
from features.customer import CUSTOMER_VIEW
from features.fraud import FRAUD_VIEW
from features.offline import compute_view
from features.online import OnlineFeatures
from features.sample import sample_cards, sample_transactions, write_sample_lake
from features.training import month_chunks, month_predicate, plan_split
from training.fraud import preprocess


def test_plan_split_orders_months_and_skips_volume_without_labels():
    months = {f"2019-{m:02d}": (1000, 0 if m in (4, 11, 12) else 3) for m in range(1, 13)}
    months["2018-12"] = (0, 0)
    split = plan_split(months)
    assert split.skipped_unlabelled == ("2019-04", "2019-11", "2019-12")
    # 9 labelled months: 15 % each for validation and test rounds to one month
    assert split.train == ("2019-01", "2019-02", "2019-03", "2019-05", "2019-06", "2019-07", "2019-08")
    assert split.validation == ("2019-09",) and split.test == ("2019-10",)
    assert split.split_of("2019-04") is None and split.split_of("2019-10") == "test"
    with pytest.raises(ValueError):
        plan_split({"2019-01": (10, 1), "2019-02": (10, 0)})


def test_evaluation_splits_take_the_newest_months_until_they_hold_enough_frauds():
    # 40 labelled months of 10 frauds, then a new pattern: 3 months with hundreds of frauds
    months = {f"{2016 + i // 12}-{i % 12 + 1:02d}": (1000, 10) for i in range(40)}
    months.update({"2019-05": (1000, 180), "2019-06": (1000, 700), "2019-07": (1000, 400)})
    split = plan_split(months, min_eval_frauds=100)
    assert split.test == ("2019-07",) and split.validation == ("2019-06",)
    assert split.train[-1] == "2019-05"  # the pattern's first month is learnt from
    # quiet months: each evaluation split gathers 10 months to reach 100 frauds
    quiet = plan_split(
        {f"{2010 + i // 12}-{i % 12 + 1:02d}": (1000, 10) for i in range(100)}, min_eval_frauds=100
    )
    assert len(quiet.test) == 10 and len(quiet.validation) == 10 and len(quiet.train) == 80
    # never more than the share of labelled months, whatever the labels
    capped = plan_split({f"2019-{m:02d}": (1000, 1) for m in range(1, 13)}, min_eval_frauds=100)
    assert (len(capped.train), len(capped.validation), len(capped.test)) == (8, 2, 2)
    assert plan_split(months).test == plan_split(months, min_eval_frauds=None).test  # shares only
    assert len(plan_split(months).test) == 6


@pytest.fixture
def lake():
    backends = Backends()
    tx = sample_transactions(6_000, 200, seed=3, days=330)
    month = pc.month(tx["ts"])
    unlabelled = pc.or_(pc.equal(month, 5), pc.equal(month, 11))
    tx = tx.set_column(
        tx.schema.get_field_index("is_fraud"), "is_fraud", pc.and_(tx["is_fraud"], pc.invert(unlabelled))
    )
    write_sample_lake(backends, tx, sample_cards(200, seed=3))
    return backends


def test_build_writes_features_table_and_split_training_set_with_manifest(lake):
    summary = build(lake.settings)
    assert summary["features_table"]["rows"] == 6_000
    counted = lake.catalog.query("SELECT count(*) AS n FROM fraud_card_features").to_pylist()[0]["n"]
    assert counted == 6_000

    ts = summary["training_set"]
    assert "2018-05" in ts["skipped_unlabelled_months"] and "2018-11" in ts["skipped_unlabelled_months"]
    manifest = json.loads(lake.object_store.get_bytes(ts["manifest"]))
    assert manifest["features"] == FRAUD_VIEW.feature_names
    assert len(manifest["data_snapshot_sha256"]) == 64
    offline = compute_view(lake.catalog, FRAUD_VIEW.name)
    parts = {}
    for name, info in manifest["splits"].items():
        assert info["uri"].endswith(f"split={name}/")  # a folder of files, written by the engine
        files = sorted(o.uri for o in lake.object_store.list(info["uri"]))
        parts[name] = pa.concat_tables(
            pq.read_table(io.BytesIO(lake.object_store.get_bytes(f))) for f in files
        )
        assert parts[name]["ts"].to_pylist() == sorted(parts[name]["ts"].to_pylist())  # in time order
        assert parts[name].num_rows == info["rows"] > 0
        months = {
            f"{y:04d}-{m:02d}"
            for y, m in zip(parts[name]["year"].to_pylist(), parts[name]["month"].to_pylist(), strict=True)
        }
        assert not months & set(manifest["skipped_unlabelled_months"])
    assert pc.max(parts["train"]["ts"]).as_py() < pc.min(parts["validation"]["ts"]).as_py()
    assert pc.max(parts["validation"]["ts"]).as_py() < pc.min(parts["test"]["ts"]).as_py()
    # every written row is the offline row of that transaction, features and label
    written = {r["txn_id"]: r for p in parts.values() for r in p.to_pylist()}
    for row in offline.to_pylist():
        if row["txn_id"] in written:
            assert written[row["txn_id"]] == row
    # the same rows as one registered table with a split column
    table = lake.catalog.query(
        "SELECT split, count(*) AS n, count(DISTINCT event_seq) AS lines "
        "FROM fraud_training_set GROUP BY split"
    ).to_pylist()
    assert {r["split"]: r["n"] for r in table} == {k: v["rows"] for k, v in manifest["splits"].items()}
    assert all(r["lines"] == r["n"] for r in table)
    one = lake.catalog.query("SELECT * FROM fraud_training_set WHERE split = 'test' LIMIT 1").to_pylist()[0]
    assert written[one["txn_id"]] == {k: v for k, v in one.items() if k != "split"}
    # the customer tables are built too
    customers = summary["customer_tables"]
    assert customers["cutoff"] == str(lake.settings.clv_cutoff)
    assert customers["customer_features"]["rows"] > 0 and customers["segmentation_training_set"]["rows"] > 0
    # same data, same definition -> same set id; new data -> new snapshot hash
    again = build(lake.settings)
    assert again["training_set"]["set_id"] == ts["set_id"]


def test_show_card_gives_latest_offline_row_and_online_state(lake):
    build(lake.settings)
    card = "crd_s000007"
    store = LocalOnlineStore.from_settings(lake.settings)
    online = OnlineFeatures(FRAUD_VIEW, store)
    rows = lake.catalog.query(
        f"SELECT * FROM transactions WHERE card_token = '{card}' ORDER BY ts, event_seq"
    ).to_pylist()
    for r in rows:
        online.update(r)
    online.flush()
    store.snapshot()

    shown = show_card(card, lake.settings)
    assert shown["latest_offline_row"]["txn_id"] == rows[-1]["txn_id"]
    assert shown["online_state"]["events_seen"] == len(rows)
    assert show_card("crd_unknown", lake.settings)["latest_offline_row"] is None
    with pytest.raises(ValueError):
        show_card("crd_x' OR 1=1 --", lake.settings)


def test_show_customer_gives_offline_rows_per_cutoff_and_online_features(lake):
    build(lake.settings)
    user = "usr_s000002"
    store = LocalOnlineStore.from_settings(lake.settings)
    online = OnlineAsOfFeatures(CUSTOMER_VIEW, store)
    rows = lake.catalog.query(
        f"SELECT * FROM transactions WHERE user_token = '{user}' ORDER BY ts, event_seq"
    ).to_pylist()
    for r in rows:
        online.update(r)
    online.flush()
    store.snapshot()

    shown = show_customer(user, lake.settings)
    cutoff = lake.settings.clv_cutoff
    as_of = [r["as_of"].date() for r in shown["offline_rows"]]
    assert as_of[-1] == cutoff and cutoff.replace(year=cutoff.year - 1) in as_of and as_of == sorted(as_of)
    assert shown["online"]["transactions_ever"] == len(rows)
    before_cutoff = sum(r["ts"].date() < cutoff for r in rows)
    assert shown["offline_rows"][-1]["transactions_ever"] == before_cutoff > 0
    assert show_customer("usr_unknown", lake.settings) == {
        "user_token": "usr_unknown",
        "view": "customer",
        "offline_rows": [],
        "online": None,
    }
    with pytest.raises(ValueError):
        show_customer("usr_x' OR 1=1 --", lake.settings)


def test_month_chunks_cut_consecutive_months_at_the_row_budget():
    rows = {"2019-01": 400, "2019-02": 500, "2019-03": 200, "2019-04": 1_500, "2019-05": 100}
    assert month_chunks(list(rows), rows, 1_000) == [
        ["2019-01", "2019-02"],
        ["2019-03"],
        ["2019-04"],  # above the budget on its own: a chunk of its own
        ["2019-05"],
    ]
    assert month_chunks(list(rows), rows, 10_000) == [list(rows)]
    assert month_chunks([], {}, 1_000) == [[]]  # an empty split still gets its (empty) file


def test_month_predicate_names_the_partition_columns_year_by_year():
    assert month_predicate(["2018-11", "2018-12", "2019-01"]) == (
        "((year = 2018 AND month IN (11, 12)) OR (year = 2019 AND month IN (1)))"
    )
    assert month_predicate([]) == "false"


def test_training_set_is_written_in_sorted_chunks_in_time_order_and_same_bytes_again(lake, monkeypatch):
    """Each chunk of months is sorted by the engine on its own, under `part-<n>/`: the files' name order
    is time order, and a rebuild from the same data writes the same bytes."""
    from features.materialize import materialize_view
    from features.training import build_training_set

    monkeypatch.setattr(training, "CHUNK_ROWS", 700)  # several chunks out of 6,000 rows
    materialize_view(lake, FRAUD_VIEW.name)

    def written(manifest: dict) -> dict[str, list[tuple[str, bytes]]]:
        return {
            name: sorted(
                (o.uri[len(info["uri"]) :], lake.object_store.get_bytes(o.uri))
                for o in lake.object_store.list(info["uri"])
            )
            for name, info in manifest["splits"].items()
        }

    manifest = build_training_set(lake)
    files = written(manifest)
    train_files = [name for name, _ in files["train"]]
    assert len(train_files) > 3 and all(n.startswith("part-") and n.count("/") == 1 for n in train_files)
    for name, info in manifest["splits"].items():
        rows = pa.concat_tables(pq.read_table(io.BytesIO(data)) for _, data in files[name])
        keys = list(zip(rows["ts"].to_pylist(), rows["event_seq"].to_pylist(), strict=True))
        assert keys == sorted(keys)  # in time order across the chunks' files
        assert rows.num_rows == info["rows"] and int(pc.sum(rows["label"]).as_py() or 0) == info["frauds"]
        assert info["first_ts"] == str(keys[0][0]) and info["last_ts"] == str(keys[-1][0])
    counted = lake.catalog.query("SELECT count(*) AS n FROM fraud_training_set").to_pylist()[0]["n"]
    assert counted == sum(info["rows"] for info in manifest["splits"].values())
    again = build_training_set(lake)
    assert again["set_id"] == manifest["set_id"] and written(again) == files
    # the fraud pipeline's feature query over the whole table comes out in time order split by split, so
    # its Preprocess step writes the rows as they come (no month-by-month sort)
    result = f"s3://{lake.settings.lake_bucket}/query-results/all/"
    lake.catalog.query_to_files("SELECT * FROM fraud_training_set", result, max_rows_per_file=2_048)
    folder = preprocess.ParquetFolder(lake.object_store.local_path(result), batch_rows=500)
    assert len(folder.files) > 2 and all(preprocess.scan(folder, "label").in_order.values())


def _split_rows(backends: Backends, manifest: dict) -> dict[str, dict]:
    rows = {}
    for info in manifest["splits"].values():
        for obj in backends.object_store.list(info["uri"]):
            for row in pq.read_table(io.BytesIO(backends.object_store.get_bytes(obj.uri))).to_pylist():
                rows[row["txn_id"]] = row
    return rows


@pytest.mark.parametrize("from_table", [True, False], ids=["features-table", "view-in-memory"])
def test_customers_answers_become_labels_known_when_the_set_was_built(lake, from_table):
    from cdp.feedback.replies import ReplyBook
    from features.materialize import materialize_view
    from features.training import build_training_set

    if from_table:
        materialize_view(lake, FRAUD_VIEW.name)
    before = build_training_set(lake)
    rows = _split_rows(lake, before)
    test_month = before["splits"]["test"]["months"][0]
    in_test = [t for t, r in rows.items() if f"{r['year']:04d}-{r['month']:02d}" >= test_month]
    fraud = next(t for t in in_test if rows[t]["label"])
    genuine = [t for t in in_test if not rows[t]["label"]][:2]
    assert before["splits"]["test"]["customer_answers"] == 0

    book = ReplyBook.from_settings(lake.settings, lake.object_store)
    book.issue("ABCD-EFGH", "ntc-1", [fraud])
    book.issue("JKLM-NPQR", "ntc-2", genuine)
    assert book.answer("ABCD-EFGH", "me").status == "recorded"  # the customer made it: not fraud
    assert book.answer("JKLM-NPQR", "not-me").status == "recorded"  # the customer did not: fraud
    after = build_training_set(lake)

    relabelled = _split_rows(lake, after)
    assert relabelled[fraud]["label"] is False
    assert all(relabelled[t]["label"] is True for t in genuine)
    unchanged = [t for t in rows if t not in {fraud, *genuine}]
    assert all(relabelled[t]["label"] == rows[t]["label"] for t in unchanged)
    assert after["splits"]["test"]["customer_answers"] == 3
    assert after["splits"]["test"]["frauds"] == before["splits"]["test"]["frauds"] - 1 + 2
    assert after["set_id"] != before["set_id"]  # the answers are part of the data snapshot
    assert after["labels_known_at"] >= before["labels_known_at"]
