"""The stream handler (transform Lambda), its scoring endpoints and the local stream runner, over a real
platform in a temporary CDP home: an MLflow registry with an approved tiny XGBoost fraud champion, the local
online store, object store, catalog and stream log.

Checks: partial-batch failures name only the malformed records; enriched rows equal the good events with
no duplicate `txn_id` after re-delivery; alerts are exactly the rows at or over the threshold; the cards'
online state advances; the runner checkpoints only after the handler succeeded and honours partial
failures like Lambda; the SageMaker adapter's `invoke_endpoint` request shape (botocore Stubber).
"""

from __future__ import annotations

import base64
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from cdp.backends import Backends
from cdp.registry import Lineage
from cdp.registry.scoring import load_scoring_model
from cdp.scoring.inprocess import InProcessEndpoint
from cdp.scoring.sagemaker import SageMakerEndpoint
from cdp.settings import Settings
from cdp.stream.local import SqliteStreamLog
from cdp.stream.port import Record
from cdp.streaming import records
from features.columns import epoch_seconds
from features.online import OnlineFeatures
from inference.holder import ModelHolder
from inference.loaded import load_version
from inference.model_files import model_folder
from inference.streaming.champion_scorer import FraudChampionScorer
from inference.streaming.handler import StreamHandler, build_handler
from inference.streaming.runner import StreamRunner, kinesis_event, run_stream
from tests.test_inference_app import random_events, token, train_fraud_model

ALERT_THRESHOLD = 0.3  # the champion's evaluated `alert_threshold` metric


@dataclass
class Champion:
    backends: Backends
    cards: list[str]
    users: dict[str, str]
    holder: ModelHolder


@pytest.fixture(scope="module")
def champion(tmp_path_factory) -> Champion:
    """A registry holding an approved fraud champion, and a holder serving it."""
    root = tmp_path_factory.mktemp("stream-handler")
    backends = Backends(Settings(home=root / "home"))
    rng = random.Random(5)
    cards = [token("crd_", rng) for _ in range(4)]
    users = {c: token("usr_", rng) for c in cards}
    train_fraud_model(root / "fraud", random_events(rng, cards, users, 400), seed=1)
    features = load_scoring_model(root / "fraud").features
    registry = backends.model_registry
    lineage = Lineage("sha256:test", features, "test", "run-1")
    registry.register("cdp-fraud", root / "fraud", {"alert_threshold": ALERT_THRESHOLD}, {}, lineage)
    registry.approve("cdp-fraud", 1, "tester", "test champion")
    holder = ModelHolder("cdp-fraud", registry, lambda v: load_version(v, backends.object_store), 0.0)
    holder.start()
    return Champion(backends, cards, users, holder)


@pytest.fixture
def backends(tmp_path) -> Backends:
    """A fresh platform (lake, online store, stream log, state) for one test."""
    return Backends(Settings(home=tmp_path / "home"))


@pytest.fixture
def handler(backends, champion) -> StreamHandler:
    h = build_handler(backends, endpoint=InProcessEndpoint(FraudChampionScorer(champion.holder)))
    yield h
    h.index.close()


def transactions(
    champion: Champion, n: int, start: datetime = datetime(2019, 6, 1), first: int = 0
) -> list[dict]:
    """Lake rows of `n` protected transactions in time order; every third is risky (gambling + bad CVV)."""
    rows = []
    for i in range(first, first + n):
        card = champion.cards[i % len(champion.cards)]
        risky = i % 3 == 0
        ts = start + timedelta(minutes=13 * i)
        rows.append(
            {
                "txn_id": f"{card[4:]}-{i}",
                "user_token": champion.users[card],
                "card_token": card,
                "ts": ts,
                "amount_cents": 90_000 if risky else 1_250,
                "channel": "online" if risky else "chip",
                "merchant_id": 7 if risky else 3,
                "merchant_city": None if risky else "Reno",
                "merchant_state": None if risky else "NV",
                "zip": None if risky else "89501",
                "mcc": 7995 if risky else 5411,
                "errors": ["Bad CVV"] if risky else None,
                "is_fraud": False,
                "event_seq": i + 1,
                "year": ts.year,
                "month": ts.month,
            }
        )
    return rows


def event_of(payloads: list[bytes], shard: str = "shardId-000000000000", first_sequence: int = 100) -> dict:
    """A Kinesis event carrying `payloads` as consecutive records of one shard."""
    stream_records = [(str(first_sequence + i).zfill(20), p) for i, p in enumerate(payloads)]
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "k",
                    "sequenceNumber": seq,
                    "data": base64.b64encode(data).decode(),
                    "approximateArrivalTimestamp": 1_560_000_000.0,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard}:{seq}",
                "eventName": "aws:kinesis:record",
                "awsRegion": "eu-west-1",
                "eventSourceARN": "arn:aws:kinesis:eu-west-1:000000000000:stream/cdp-transactions",
            }
            for seq, data in stream_records
        ]
    }


def scored_rows(backends: Backends, table: str = "transactions_scored") -> list[dict]:
    return backends.catalog.query(f"SELECT * FROM {table} ORDER BY txn_id").to_pylist()


def sequence_at(event: dict, index: int) -> str:
    return event["Records"][index]["kinesis"]["sequenceNumber"]


# -- the handler ----------------------------------------------------------------------------------------
def test_malformed_records_are_the_only_batch_item_failures(handler, backends, champion):
    good = [records.encode(r) for r in transactions(champion, 6)]
    missing_field = json.dumps({"txn_id": "x-1"}).encode()
    payloads = [good[0], b"{not json", *good[1:4], missing_field, *good[4:]]
    event = event_of(payloads)
    response = handler(event, None)
    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": sequence_at(event, 1)},
            {"itemIdentifier": sequence_at(event, 5)},
        ]
    }
    rows = scored_rows(backends)
    assert sorted(r["txn_id"] for r in rows) == sorted(r["txn_id"] for r in transactions(champion, 6))
    assert handler.report.malformed == 2 and handler.report.scored == 6
    files = [
        o.uri
        for o in backends.object_store.list(f"s3://{backends.settings.lake_bucket}/transactions_scored/")
    ]
    assert files and all(
        u.endswith(f"part-scored-shardId-000000000000-{sequence_at(event, 0)}.parquet") for u in files
    )


def test_a_batch_of_only_malformed_records_reports_every_record(handler, backends):
    event = event_of([b"\xff\xfe", b"[]"])
    response = handler(event, None)
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == [
        sequence_at(event, i) for i in (0, 1)
    ]


def test_failure_messages_name_the_record_never_its_data(handler, champion, caplog):
    row = transactions(champion, 1)[0]
    secret = row["card_token"]
    broken = records.encode(row).replace(b'"ts":"', b'"ts":"' + secret.encode())  # an unparseable ts
    caplog.set_level("DEBUG")
    response = handler(event_of([broken]), None)
    assert len(response["batchItemFailures"]) == 1
    assert secret not in caplog.text


def test_enriched_rows_carry_features_score_and_model_version(handler, backends, champion):
    rows = transactions(champion, 9)
    handler(event_of([records.encode(r) for r in rows]), None)
    landed = scored_rows(backends)
    assert len(landed) == len(rows)
    for row in landed:
        features = json.loads(row["features"])
        assert features["amount_cents"] == row["amount_cents"] and "txn_count_24h" in features
        assert 0.0 <= row["fraud_probability"] <= 1.0
        assert row["model"] == "cdp-fraud" and row["model_version"] == 1
        assert row["threshold"] == pytest.approx(ALERT_THRESHOLD)
        assert row["is_alert"] == (row["fraud_probability"] >= ALERT_THRESHOLD)
    expected = FraudChampionScorer(champion.holder).score([json.loads(r["features"]) for r in landed])
    assert [r["fraud_probability"] for r in landed] == pytest.approx([s.probability for s in expected.scores])


def test_redelivering_the_same_batch_adds_no_rows(handler, backends, champion):
    rows = transactions(champion, 12)
    event = event_of([records.encode(r) for r in rows])
    handler(event, None)
    before = scored_rows(backends)
    assert handler(event, None) == {"batchItemFailures": []}
    after = scored_rows(backends)
    ids = [r["txn_id"] for r in after]
    assert len(ids) == len(set(ids)) == len(rows)
    assert [r["fraud_probability"] for r in after] == [r["fraud_probability"] for r in before]
    assert handler.report.redelivered == len(rows)


def test_a_later_batch_overlapping_an_earlier_one_lands_only_new_ids(handler, backends, champion):
    rows = transactions(champion, 10)
    handler(event_of([records.encode(r) for r in rows[:6]], first_sequence=100), None)
    handler(event_of([records.encode(r) for r in rows[3:]], first_sequence=103), None)
    ids = [r["txn_id"] for r in scored_rows(backends)]
    assert sorted(ids) == sorted(r["txn_id"] for r in rows)


def test_alerts_are_the_scored_rows_over_the_threshold(handler, backends, champion):
    handler(event_of([records.encode(r) for r in transactions(champion, 12)]), None)
    landed = scored_rows(backends)
    over = {r["txn_id"] for r in landed if r["fraud_probability"] >= ALERT_THRESHOLD}
    assert over and len(over) < len(landed)  # the risky third alerts, the rest does not
    alerts = scored_rows(backends, "fraud_alerts")
    assert {a["txn_id"] for a in alerts} == over and len(alerts) == len(over)
    assert handler.report.alerts == len(over)
    assert all(a["reasons"] for a in alerts)  # reason codes explain every alert


def test_the_cards_online_state_advances_with_each_batch(handler, backends, champion):
    card = champion.cards[0]
    rows = [r for r in transactions(champion, 16) if r["card_token"] == card]  # 13 minutes x 4 apart
    handler(event_of([records.encode(r) for r in rows[:2]], first_sequence=100), None)
    handler(event_of([records.encode(r) for r in rows[2:]], first_sequence=200), None)
    counts = {r["txn_id"]: json.loads(r["features"])["txn_count_24h"] for r in scored_rows(backends)}
    assert [counts[r["txn_id"]] for r in rows] == [0, 1, 2, 3]


def test_each_event_is_computed_once_and_advances_its_card(handler, backends, champion, monkeypatch):
    """Scoring and the state advance share one computation of the batch's online features."""
    computed: list[str] = []
    update = OnlineFeatures.update

    def counting(self, row):  # noqa: ANN001, ANN202
        computed.append(row["txn_id"])
        return update(self, row)

    monkeypatch.setattr(OnlineFeatures, "update", counting)
    rows = transactions(champion, 16)
    handler(event_of([records.encode(r) for r in rows[:7]], first_sequence=100), None)
    handler(event_of([records.encode(r) for r in rows[7:]], first_sequence=200), None)
    assert sorted(computed) == sorted(r["txn_id"] for r in rows)  # once each: not again to advance
    last = handler.card_features.last_event_epochs(champion.cards)
    for card in champion.cards:
        newest = max(r["ts"] for r in rows if r["card_token"] == card)
        assert last[card] == epoch_seconds(newest)
    landed = sorted(scored_rows(backends), key=lambda r: r["ts"])
    for card in champion.cards:  # the second batch saw the first batch's events in the card's state
        counts = [json.loads(r["features"])["txn_count_24h"] for r in landed if r["card_token"] == card]
        assert counts == list(range(len(counts)))


def test_a_late_event_is_scored_but_does_not_move_its_card(handler, backends, champion):
    rows = transactions(champion, 8, first=0)
    handler(event_of([records.encode(r) for r in rows[4:]], first_sequence=100), None)
    handler(event_of([records.encode(rows[0])], first_sequence=200), None)  # older than its card's last
    assert len(scored_rows(backends)) == 5
    assert handler.report.late_events == 1


def card_states(backends: Backends) -> dict[str, bytes]:
    store = backends.online_store
    return store.get_many(store.keys("fraud_card#"))


def test_events_dated_outside_the_window_are_quarantined_and_never_freeze_the_card(
    handler, backends, champion
):
    """A transaction dated 9999-12-31 (or 1970) is not scored into the card's state: it is quarantined
    with its reason, and the card's later real events still advance its velocity features."""
    card = champion.cards[0]
    rows = [r for r in transactions(champion, 16) if r["card_token"] == card]
    future = {
        **rows[0],
        "txn_id": f"{card[4:]}-9001",
        "ts": datetime(9999, 12, 31),
        "year": 9999,
        "month": 12,
    }
    ancient = {**rows[0], "txn_id": f"{card[4:]}-9002", "ts": datetime(1970, 1, 2), "year": 1970, "month": 1}
    handler(event_of([records.encode(r) for r in (future, ancient, rows[0])], first_sequence=100), None)
    handler(event_of([records.encode(r) for r in rows[1:]], first_sequence=200), None)
    handler(event_of([records.encode(future)], first_sequence=300), None)  # re-delivery: dropped
    landed = {r["txn_id"]: json.loads(r["features"])["txn_count_24h"] for r in scored_rows(backends)}
    assert [landed[r["txn_id"]] for r in rows] == [0, 1, 2, 3]  # the card kept counting
    assert future["txn_id"] not in landed and ancient["txn_id"] not in landed
    quarantined = scored_rows(backends, "stream_quarantine")
    assert [(q["txn_id"], q["card_token"]) for q in quarantined] == sorted(
        [(future["txn_id"], card), (ancient["txn_id"], card)]
    )
    reasons = {q["txn_id"]: q["reason"] for q in quarantined}
    assert "future" in reasons[future["txn_id"]] and "earliest" in reasons[ancient["txn_id"]]
    assert "amount_cents" not in quarantined[0] and "user_token" not in quarantined[0]
    assert handler.report.quarantined == 2 and handler.report.late_events == 0


def test_a_replay_the_idempotency_index_forgot_is_not_counted_twice(backends, champion):
    """The card state itself knows the recorded txn_ids: a batch re-delivered to a handler whose index
    lost its claims is scored again but moves no card."""
    endpoint = InProcessEndpoint(FraudChampionScorer(champion.holder))
    rows = transactions(champion, 12)
    first = build_handler(backends, endpoint=endpoint)
    first(event_of([records.encode(r) for r in rows], first_sequence=100), None)
    states = card_states(backends)
    forgetful = build_handler(backends, endpoint=endpoint, index=backends.idempotency_index("fresh-index"))
    forgetful(event_of([records.encode(r) for r in rows], first_sequence=500), None)
    assert card_states(backends) == states
    assert forgetful.report.late_events == 0
    first.index.close()
    forgetful.index.close()


def test_without_a_champion_the_rules_score_the_batch_and_are_counted(backends, champion):
    from cdp.metrics.port import MetricQuery, Statistic
    from inference.degraded import DEGRADED_DECISIONS, SERVING_NAMESPACE

    registry = champion.backends.model_registry
    absent = ModelHolder("cdp-none", registry, lambda v: load_version(v, champion.backends.object_store), 0.0)
    absent.start()
    h = build_handler(backends, endpoint=InProcessEndpoint(FraudChampionScorer(absent)))
    rows = transactions(champion, 9)
    response = h(event_of([records.encode(r) for r in rows], first_sequence=100), None)
    assert response == {"batchItemFailures": []}
    landed = scored_rows(backends)
    assert len(landed) == 9 and {(r["model"], r["model_version"]) for r in landed} == {("rules", 0)}
    assert all(r["threshold"] == 0.5 for r in landed)
    assert all(r["is_alert"] == bool(r["reasons"]) for r in landed)
    assert h.report.degraded == 9 and h.report.scored == 9
    query = MetricQuery(SERVING_NAMESPACE, DEGRADED_DECISIONS, Statistic.SUM, 60, {"Model": "cdp-fraud"})
    now = datetime.now(UTC)
    points = backends.metrics.get_statistics(query, now - timedelta(hours=1), now + timedelta(hours=1))
    assert sum(p.value for p in points) == 9
    assert card_states(backends)  # the cards still advance
    h.index.close()


# -- the endpoints --------------------------------------------------------------------------------------
def test_sagemaker_endpoint_request_shape(champion):
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    endpoint = SageMakerEndpoint(client, "cdp-fraud-endpoint", threshold=0.4, rows_per_call=2)
    rows = [{"amount_cents": 100, "mcc_group": "grocery", "amount_zscore": None}] * 3
    stub = Stubber(client)
    for part, probabilities in ((rows[:2], [0.1, 0.9]), (rows[2:], [0.5])):
        body = json.dumps({"predictions": probabilities, "model": "cdp-fraud", "model_version": 4}).encode()
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(body), len(body)), "ContentType": "application/json"},
            expected_params={
                "EndpointName": "cdp-fraud-endpoint",
                "ContentType": "application/json",
                "Accept": "application/json",
                "Body": SageMakerEndpoint.request_body(part),
            },
        )
    with stub:
        result = endpoint.score(rows)
    stub.assert_no_pending_responses()
    assert json.loads(SageMakerEndpoint.request_body(rows[:1])) == {"instances": [rows[0]]}
    assert [s.probability for s in result.scores] == [0.1, 0.9, 0.5]
    assert (result.model, result.model_version, result.threshold) == ("cdp-fraud", 4, 0.4)


def test_sagemaker_endpoint_rejects_a_short_answer():
    client = boto3.client("sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x",
                          aws_secret_access_key="x")  # fmt: skip
    body = json.dumps({"predictions": [0.2]}).encode()
    stub = Stubber(client)
    stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(body), len(body))})
    with stub, pytest.raises(RuntimeError, match="one prediction per row"):
        SageMakerEndpoint(client, "e").score([{"a": 1}, {"a": 2}])


# -- the runner -----------------------------------------------------------------------------------------
def put_rows(stream: SqliteStreamLog, payloads: list[tuple[str, bytes]]) -> None:
    stream.put_records([Record(key, data) for key, data in payloads])


def test_kinesis_event_round_trips_the_records(tmp_path):
    with SqliteStreamLog(tmp_path / "s.sqlite", "s", shards=1) as stream:
        put_rows(stream, [("a", b"one"), ("b", b"two")])
        shard = stream.list_shards()[0].shard_id
        got = stream.get_records(stream.get_shard_iterator(shard, "TRIM_HORIZON")).records
    event = kinesis_event("s", shard, got)
    assert [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]] == [b"one", b"two"]
    assert [r["eventID"] for r in event["Records"]] == [f"{shard}:{r.sequence_number}" for r in got]


def test_runner_checkpoints_nothing_when_the_handler_raises(tmp_path):
    with SqliteStreamLog(tmp_path / "s.sqlite", "s", shards=1) as stream:
        put_rows(stream, [("a", b"1"), ("a", b"2")])
        shard = stream.list_shards()[0].shard_id

        def failing(event, context):  # noqa: ANN001, ANN202
            raise RuntimeError("endpoint down")

        with pytest.raises(RuntimeError):
            StreamRunner(stream, failing).poll()
        assert stream.get_checkpoint("stream-handler", shard) is None
        seen: list[bytes] = []

        def ok(event, context):  # noqa: ANN001, ANN202
            seen.extend(base64.b64decode(r["kinesis"]["data"]) for r in event["Records"])
            return {"batchItemFailures": []}

        StreamRunner(stream, ok).run()
        assert seen == [b"1", b"2"]  # re-read from the start
        assert stream.get_checkpoint("stream-handler", shard) is not None


def test_runner_honours_partial_failures_and_dead_letters_a_poison_record(tmp_path):
    with SqliteStreamLog(tmp_path / "s.sqlite", "s", shards=1) as stream:
        put_rows(stream, [("a", b"1"), ("a", b"poison"), ("a", b"3")])
        shard = stream.list_shards()[0].shard_id
        deliveries: list[list[bytes]] = []
        checkpoints: list[str | None] = []

        def handler(event, context):  # noqa: ANN001, ANN202
            checkpoints.append(stream.get_checkpoint("stream-handler", shard))
            datas = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
            deliveries.append(datas)
            bad = [
                r["kinesis"]["sequenceNumber"]
                for r, d in zip(event["Records"], datas, strict=True)
                if d == b"poison"
            ]
            return {"batchItemFailures": [{"itemIdentifier": s} for s in bad]}

        dead = tmp_path / "dead.jsonl"
        runner = StreamRunner(stream, handler, max_attempts=2, dead_letters=dead)
        report = runner.run()
        all_records = stream.get_records(stream.get_shard_iterator(shard, "TRIM_HORIZON")).records
    first, poison, last = (r.sequence_number for r in all_records)
    # delivery 1 fails at the poison record: checkpoint just before it, re-deliver from it
    assert deliveries == [[b"1", b"poison", b"3"], [b"poison", b"3"], [b"3"]]
    assert checkpoints == [None, first, poison]
    assert report.dead_lettered == 1 and report.partial_failures == 2
    entry = json.loads(dead.read_text())
    assert (entry["shard_id"], entry["sequence_number"], entry["attempts"]) == (shard, poison, 2)
    assert "poison" not in dead.read_text()
    assert last  # the final batch succeeded and was checkpointed
    with SqliteStreamLog(tmp_path / "s.sqlite", "s") as stream:
        assert stream.get_checkpoint("stream-handler", shard) == last


def test_runner_passes_over_a_poison_record_that_ends_its_batch(tmp_path):
    with SqliteStreamLog(tmp_path / "s.sqlite", "s", shards=1) as stream:
        put_rows(stream, [("a", b"1"), ("a", b"poison"), ("a", b"3")])
        shard = stream.list_shards()[0].shard_id
        deliveries: list[list[bytes]] = []

        def handler(event, context):  # noqa: ANN001, ANN202
            datas = [base64.b64decode(r["kinesis"]["data"]) for r in event["Records"]]
            deliveries.append(datas)
            bad = [r["kinesis"]["sequenceNumber"] for r, d in zip(event["Records"], datas, strict=True)
                   if d == b"poison"]  # fmt: skip
            return {"batchItemFailures": [{"itemIdentifier": s} for s in bad]}

        checkpoints: list[str | None] = []
        runner = StreamRunner(stream, handler, batch_size=2, max_attempts=1)
        while runner.poll():
            checkpoints.append(stream.get_checkpoint("stream-handler", shard))
        report = runner.report
        first, poison, last = (
            r.sequence_number
            for r in stream.get_records(stream.get_shard_iterator(shard, "TRIM_HORIZON")).records
        )
        assert stream.get_checkpoint("stream-handler", shard) == last
    assert deliveries == [[b"1", b"poison"], [b"3"]]  # dead-lettered at once, the next batch follows it
    assert checkpoints == [poison, last]
    assert (report.records, report.deliveries, report.partial_failures, report.dead_lettered) == (3, 2, 1, 1)
    assert first < poison


def test_run_stream_scores_the_stream_into_the_lake_exactly_once(backends, champion):
    """End to end with the default in-process endpoint: the champion is loaded from the test home's
    registry, so this test registers it there first."""
    source = champion.backends.model_registry.champion("cdp-fraud")
    folder = model_folder(source, champion.backends.object_store)
    registry = backends.model_registry
    registry.register("cdp-fraud", folder, {"alert_threshold": ALERT_THRESHOLD}, {}, source.lineage)
    registry.approve("cdp-fraud", 1, "tester", "test champion")
    rows = transactions(champion, 30)
    payloads = [(r["card_token"], records.encode(r)) for r in rows]
    payloads.insert(7, ("crd_bad", b"{broken"))
    put_rows(backends.stream, payloads)
    report = run_stream(backends)
    assert report.dead_lettered == 1
    landed = scored_rows(backends)
    assert sorted(r["txn_id"] for r in landed) == sorted(r["txn_id"] for r in rows)
    assert run_stream(backends).records == 0  # caught up: a second run reads nothing new
    assert len(scored_rows(backends)) == len(rows)
