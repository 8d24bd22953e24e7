"""Batch scoring (`cdp score`, `score_transactions`) on a small generated platform: a lake of a few users, the
fraud features materialised, a booster trained by the training scripts' own functions and registered twice.

Checked: features equal the training set's for the same transactions (one feature implementation); bad rows
quarantined with reasons and counts reconciled; the version option; unlabelled files; no personal data in the
outputs; the CLI's lines; the AWS adapter's requests (botocore Stubber) and answers.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.backends import Backends
from cdp.registry import Lineage
from cdp.settings import Settings
from features.views import EVENT_VIEWS, view_sql

USERS, SEED, START = 5, 11, date(2017, 1, 1)
MODEL = "cdp-fraud"
JOB_ARN = "arn:aws:sagemaker:eu-west-1:1:transform-job/j"
MODEL_ARN = "arn:aws:sagemaker:eu-west-1:1:model/m"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    from cdp.batch.job import run_batch
    from cdp.synth.generator import generate
    from features.materialize import materialize_view
    from features.training import build_training_set
    from training.fraud import preprocess, train

    root = tmp_path_factory.mktemp("score")
    generate(root / "ibm", users=USERS, seed=SEED, start=START, workers=1)
    backends = Backends(Settings(home=root / "home", workers=1))
    run_batch(root / "ibm", backends)
    materialize_view(backends, "fraud_card")
    manifest = build_training_set(backends, "fraud_card")
    frame = backends.catalog.query("SELECT * FROM fraud_training_set").to_pandas()
    parts, spec = preprocess.split_frames(frame)
    args = train.parse_hyperparameters(["--num_round", "30", "--nthread", "1"])
    booster, summary = train.train_booster(parts["train"], parts["validation"], spec["features"], args)
    train.save_model(root / "model", booster, spec, summary, args)
    lineage = Lineage(manifest["data_snapshot_sha256"], tuple(spec["features"]), "test", "run-1")
    registry = backends.model_registry
    registry.register(MODEL, root / "model", {"alert_threshold": 0.2}, {}, lineage)
    registry.approve(MODEL, 1, "tester", "first champion")
    registry.register(MODEL, root / "model", {"alert_threshold": 0.05}, {}, lineage)  # v2, pending
    source = root / "ibm" / "credit_card_transactions-ibm_v2.csv"
    return {"backends": backends, "root": root, "source": source}


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def bad_file(platform, tmp_path) -> Path:
    """The source's last 600 rows plus four bad ones: a month 13, an amount that is not one, an unknown
    card, a row of two columns."""
    rows = rows_of(platform["source"])
    good = rows[-600:]
    template = good[0]
    bad = [
        [*template[:3], "13", *template[4:]],
        [*template[:6], "twelve dollars", *template[7:]],
        ["4999", *template[1:]],
        ["too", "few"],
    ]
    return write_rows(tmp_path / "bad.csv", [rows[0], *good[:300], *bad, *good[300:]])


def test_features_and_scores_equal_those_of_the_training_features(platform):
    from inference.batch_scoring import score_transactions

    b = platform["backends"]
    from_file = score_transactions(MODEL, 1, platform["source"], backends=b, reasons="none")
    from_table = score_transactions(MODEL, 1, "fraud_card_features", backends=b, reasons="none")
    assert from_file.attrs["quarantined"] == 0 and from_file.attrs["rows_in"] == len(from_file)
    merged = from_file.merge(from_table, on="txn_id", suffixes=("_file", "_table"))
    # every lake row of the file is found among the materialised features, by the extraction's txn_id
    assert len(merged) == len(from_table) > 0.9 * len(from_file)
    np.testing.assert_allclose(merged["score_file"], merged["score_table"], rtol=1e-6)
    assert (merged["is_fraud_file"] == merged["is_fraud_table"]).all()


def assert_same_features(got, want) -> None:
    """Two frames of view rows (same index) hold the same values: floats to a tolerance, the rest exactly."""
    assert list(got.columns) == list(want.columns)
    for column in [c for c in got.columns if c != "ts"]:
        left, right = got[column], want[column]
        if left.dtype.kind == "f":
            np.testing.assert_allclose(left.to_numpy(float), right.to_numpy(float), rtol=1e-9, err_msg=column)
        else:
            assert (
                left.astype(object).where(left.notna(), None).tolist()
                == right.astype(object).where(right.notna(), None).tolist()
            ), column


def test_point_in_time_features_of_lake_rows_equal_the_materialised_ones(platform):
    from features.point_in_time import features_for_rows

    b = platform["backends"]
    newest = b.catalog.query("SELECT max(ts) AS t FROM transactions").to_pylist()[0]["t"]
    rows = b.catalog.query(
        f"SELECT * FROM transactions WHERE ts >= TIMESTAMP '{newest:%Y-%m-%d}' - INTERVAL 60 DAY"
    )
    got = features_for_rows(b.catalog, rows).to_pandas().set_index("txn_id")
    assert list(got.index) == rows["txn_id"].to_pylist()  # input order
    want = b.catalog.query("SELECT * FROM fraud_card_features").to_pandas().set_index("txn_id").loc[got.index]
    assert_same_features(got, want[got.columns])


def moved_copies(rows: pa.Table, shift: timedelta, tag: str, card_token: str | None = None) -> pa.Table:
    """Copies of lake rows `shift` later (their partition month with them), with new transaction ids, and
    on `card_token` when given."""
    import pyarrow.compute as pc

    ts = pc.add(rows["ts"], pa.scalar(shift, pa.duration("s")))
    moved = rows.set_column(rows.schema.get_field_index("ts"), "ts", ts)
    for part in ("year", "month"):
        at = moved.schema.get_field_index(part)
        moved = moved.set_column(at, part, getattr(pc, part)(ts).cast(pa.int32()))
    ids = pa.array([f"{tag}-{i}" for i in range(rows.num_rows)])
    moved = moved.set_column(moved.schema.get_field_index("txn_id"), "txn_id", ids)
    if card_token is not None:
        tokens = pa.array([card_token] * rows.num_rows)
        moved = moved.set_column(moved.schema.get_field_index("card_token"), "card_token", tokens)
    return moved


def scoring_file(platform, case: str) -> pa.Table:
    """Rows to score, in the lake schema (`interleaved`: within the lake's newest weeks; `after`: months
    after the lake ends), each with a card the lake has never seen."""
    b = platform["backends"]
    lake = b.catalog.query("SELECT * FROM transactions ORDER BY ts, event_seq")
    newest = lake["ts"][-1].as_py()
    cards = b.catalog.query(
        "SELECT card_token, count(*) AS n FROM transactions GROUP BY card_token ORDER BY n DESC, card_token"
    )["card_token"].to_pylist()
    recent = b.catalog.query(
        f"SELECT * FROM transactions WHERE ts >= TIMESTAMP '{newest:%Y-%m-%d %H:%M:%S}' - INTERVAL 45 DAY "
        "ORDER BY ts, event_seq"
    )

    def card(token: str) -> pa.Table:
        return recent.filter(pa.compute.equal(recent["card_token"], token))

    if case == "interleaved":
        # the busiest card's newest weeks again, 3h07m later: its file rows and its newest lake rows
        # alternate in time (the lake is read up to its first file row only)
        shift = timedelta(hours=3, minutes=7)
        parts = [moved_copies(card(cards[0]), shift, "a")]
    else:
        # two cards' newest weeks, 200 days after the lake's end: all their history is before the tail
        shift = timedelta(days=200)
        parts = [moved_copies(card(c), shift, f"d{i}") for i, c in enumerate(cards[:2])]
    parts.append(moved_copies(card(cards[0]).slice(0, 40), shift, "n", card_token="crd_never_in_the_lake"))
    return pa.concat_tables(parts)


@pytest.mark.parametrize("case", ["interleaved", "after"])
def test_seeded_point_in_time_features_equal_the_whole_history_ones(platform, case):
    """The tail-and-aggregates path gives every feature and score the whole-history path gives."""
    from features.point_in_time import features_for_rows, first_events, lake_history, lake_tail, tail_start
    from inference.batch_scoring import model_matrix, resolve_version, score_matrix
    from inference.loaded import load_version

    b = platform["backends"]
    rows = scoring_file(platform, case)
    got = features_for_rows(b.catalog, rows)
    want = features_for_rows(b.catalog, rows, whole_history=True)
    assert got.num_rows == want.num_rows == rows.num_rows
    assert got["txn_id"].to_pylist() == rows["txn_id"].to_pylist()
    assert_same_features(got.to_pandas(), want.to_pandas())
    # not trivial: the whole history is far longer than the tail read, and rows read the older history
    firsts = first_events(rows)
    tail = lake_tail(b.catalog, firsts, tail_start(firsts, "fraud_card"))
    assert lake_history(b.catalog, rows).num_rows > 5 * max(tail.num_rows, 1)
    assert (tail.num_rows > 0) == (case == "interleaved")
    # each card's first file row: the time since its previous event comes from the lake, but for the new card
    first_rows = got.to_pandas().groupby("card_token", sort=False).head(1).set_index("card_token")
    since = first_rows["seconds_since_previous"]
    assert since.isna().tolist() == [c == "crd_never_in_the_lake" for c in first_rows.index]
    if case == "after":
        assert (since.dropna() > 150 * 86_400).all()  # the card's last lake event, before the tail
    model = load_version(resolve_version(b, MODEL, 1), b.object_store)
    names = EVENT_VIEWS["fraud_card"].feature_names
    scores = [
        score_matrix(model, model_matrix(model, t.select(names)), None).probabilities for t in (got, want)
    ]
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-6, atol=1e-9)


def test_rows_scored_against_an_empty_lake_read_no_history(platform, tmp_path):
    from features.point_in_time import features_for_rows

    rows = scoring_file(platform, "interleaved")
    empty = Backends(Settings(home=tmp_path / "empty", workers=1))
    got = features_for_rows(empty.catalog, rows)
    want = features_for_rows(platform["backends"].catalog, rows)
    assert got.num_rows == rows.num_rows and got["txn_id"].to_pylist() == rows["txn_id"].to_pylist()
    assert_same_features(
        got.to_pandas(), features_for_rows(empty.catalog, rows, whole_history=True).to_pandas()
    )
    # without the lake's history the rows' features differ (each card starts afresh)
    assert got["seconds_since_previous"].null_count > want["seconds_since_previous"].null_count


def test_the_lake_aggregates_query_translates_to_athena():
    from cdp.catalog.dialect import parses_as_trino, to_athena
    from features.incremental import history_aggregates_sql

    where = "t.card_token IN ('a', 'b') AND t.ts < TIMESTAMP '2019-01-01 00:00:00'"
    sql = history_aggregates_sql(EVENT_VIEWS["fraud_card"], view_sql("fraud_card"), where)
    assert "UNION ALL" in sql and parses_as_trino(to_athena(sql))


def test_bad_rows_are_quarantined_with_reasons_and_counts_reconcile(platform, tmp_path):
    from cdp.ibm.quarantine import read_quarantine
    from inference.batch_scoring import score_transactions

    scores = score_transactions(
        MODEL,
        None,
        bad_file(platform, tmp_path),
        backends=platform["backends"],
        quarantine_dir=tmp_path / "q",
    )
    a = scores.attrs
    assert (a["rows_in"], a["scored"], a["quarantined"]) == (604, 600, 4)
    assert a["rows_in"] == a["scored"] + a["quarantined"] == len(scores) + 4
    quarantined = read_quarantine(tmp_path / "q").to_pylist()
    reasons = {r["line"]: r["reason"] for r in quarantined}
    assert reasons[302].startswith("Month: not a month") and reasons[303].startswith("Amount:")
    assert reasons[304] == "unknown card" and reasons[305].startswith("expected 15 columns")
    assert all(r["raw"] is None for r in quarantined)  # no source text kept
    assert 302 not in set(scores["row"]) and scores["row"].is_unique
    assert set(scores.columns) >= {
        "row",
        "txn_id",
        "card_token",
        "ts",
        "score",
        "alert",
        "reason_codes",
        "is_fraud",
    }
    # reason codes for the alerted rows only (the default), at the champion's registered threshold
    assert (a["version"], a["threshold"]) == (1, 0.2)
    assert (scores["alert"] == (scores["score"] >= 0.2)).all()
    assert (scores.loc[scores["alert"], "reason_codes"] != "").all()
    assert (scores.loc[~scores["alert"], "reason_codes"] == "").all()


def test_version_option_scores_with_that_version_and_its_threshold(platform, tmp_path):
    from cdp.registry.port import ModelVersionNotFoundError
    from inference.batch_scoring import ScoringInputError, score_transactions

    b = platform["backends"]
    path = bad_file(platform, tmp_path)
    champion = score_transactions(MODEL, None, path, backends=b)
    second = score_transactions(MODEL, 2, path, backends=b)
    assert (champion.attrs["version"], second.attrs["version"]) == (1, 2)
    assert second.attrs["threshold"] == 0.05 and second["alert"].sum() >= champion["alert"].sum()
    with pytest.raises(ModelVersionNotFoundError):
        score_transactions(MODEL, 9, path, backends=b)
    with pytest.raises(ScoringInputError):
        score_transactions(MODEL, None, path, backends=b, alias="challenger")


def test_an_unlabelled_file_is_scored_without_labels(platform, tmp_path):
    from inference.batch_scoring import score_transactions

    rows = [r[:-1] for r in rows_of(platform["source"])[:201]]
    path = write_rows(tmp_path / "new.csv", rows)
    scores = score_transactions(MODEL, 1, path, backends=platform["backends"], reasons="all")
    assert len(scores) == 200 and "is_fraud" not in scores.columns
    assert (scores["reason_codes"] != "").mean() > 0.9  # every row explained (`all`), but all-negative rows


def test_no_personal_data_in_scores_or_quarantine(platform, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    ibm = platform["root"] / "ibm"
    secrets = set()
    for row in rows_of(ibm / "sd254_users.csv")[1:]:
        secrets |= {row[0], row[6]}  # name, address
    for row in rows_of(ibm / "sd254_cards.csv")[1:]:
        secrets.add(row[4])  # card number
    out = tmp_path / "scores.csv"
    env = {"CDP_HOME": str(platform["backends"].settings.home), "CDP_WORKERS": "1"}
    result = CliRunner().invoke(app, ["score", str(bad_file(platform, tmp_path)), "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "604 rows in = 600 scored + 4 quarantined" in result.output
    quarantine = platform["backends"].settings.quarantine_dir / "score" / "bad_csv" / "quarantine.parquet"
    texts = out.read_text() + json.dumps(pq.read_table(quarantine).to_pylist(), default=str)
    assert "crd_" in texts
    assert not [s for s in secrets if s and s in texts]


def test_cli_errors_are_one_line(platform, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    env = {"CDP_HOME": str(platform["backends"].settings.home), "CDP_WORKERS": "1"}
    unlabelled = write_rows(tmp_path / "u.csv", [r[:-1] for r in rows_of(platform["source"])[:50]])
    result = CliRunner().invoke(app, ["evaluate", str(unlabelled)], env=env)
    assert result.exit_code == 2 and "no fraud labels" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(app, ["score", "no_such_table"], env=env)
    assert result.exit_code == 2 and "neither a file nor a lake table" in result.output


def test_cli_evaluate_writes_the_report(platform, tmp_path):
    from typer.testing import CliRunner

    from app.cli import app

    env = {"CDP_HOME": str(platform["backends"].settings.home), "CDP_WORKERS": "1",
           "CDP_EVALUATE_BOOTSTRAP_ROUNDS": "20"}  # fmt: skip
    result = CliRunner().invoke(
        app, ["evaluate", str(platform["source"]), "--out", str(tmp_path / "e")], env=env
    )
    assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert doc["version"] == 1 and doc["frauds"] > 0 and 0 <= doc["metrics"]["pr_auc"] <= 1
    assert (tmp_path / "e" / "evaluation.html").is_file() and "pr_auc" in result.output


# -- the AWS adapter -----------------------------------------------------------------------------------------


class MemoryStore:
    """Object store stand-in; the transform job's answer is made from its input when asked for."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_bytes(self, uri: str, data: bytes) -> None:
        self.objects[uri] = data

    def get_bytes(self, uri: str) -> bytes:
        if uri.endswith("/output/rows.jsonl.out"):
            source = uri.replace("/output/rows.jsonl.out", "/input/rows.jsonl")
            answers = []
            for line in self.objects[source].decode().splitlines():
                rows = json.loads(line)["instances"]
                answers.append(json.dumps({
                    "predictions": [r["amount_cents"] / 1000 for r in rows],
                    "reasons": [[{"feature": "amount_cents", "contribution": 0.5}] for _ in rows],
                }))  # fmt: skip
            return ("\n".join(answers) + "\n").encode()
        return self.objects[uri]


def test_sagemaker_transform_requests_and_answers():
    from botocore.stub import ANY, Stubber

    from cdp.registry.port import ModelVersion
    from cdp.transform.sagemaker import SageMakerTransform

    client = sagemaker_client()
    store = MemoryStore()
    image, role = "123.dkr.ecr/cdp-inference:1", "arn:aws:iam::1:role/r"
    transform = SageMakerTransform(
        client, store, "lake", image, role, rows_per_record=2, sleep=lambda s: None
    )
    version = ModelVersion(
        MODEL,
        3,
        "Approved",
        True,
        {},
        {},
        Lineage("h", ("amount_cents",), "c", "r"),
        "s3://lake/model-registry/cdp-fraud/3/model.tar.gz",
        None,
    )  # type: ignore[arg-type]
    rows = pa.table({"amount_cents": [100, 900, 300], "is_online": [True, False, None]})
    with Stubber(client) as stub:
        stub.add_response("create_model", {"ModelArn": MODEL_ARN}, {
            "ModelName": ANY, "ExecutionRoleArn": role,
            "PrimaryContainer": {"Image": image,
                                 "ModelDataUrl": "s3://lake/model-registry/cdp-fraud/3/model.tar.gz",
                                 "Environment": {"CDP_MODEL_NAME": MODEL,
                                                 "CDP_MODEL_VERSION": "3"}}})  # fmt: skip
        stub.add_response("create_transform_job", {"TransformJobArn": JOB_ARN}, {
            "TransformJobName": ANY, "ModelName": ANY, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 6,
            "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": ANY}},
                               "ContentType": "application/json", "SplitType": "Line"},
            "TransformOutput": {"S3OutputPath": ANY, "Accept": "application/json", "AssembleWith": "Line"},
            "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}})  # fmt: skip
        stub.add_response("describe_transform_job", _described("InProgress"), {"TransformJobName": ANY})
        stub.add_response("describe_transform_job", _described("Completed"), {"TransformJobName": ANY})
        stub.add_response("delete_model", {}, {"ModelName": ANY})
        output = transform.transform(version, rows, reasons_from=0.5)
    np.testing.assert_allclose(output.probabilities, [0.1, 0.9, 0.3])
    assert output.reasons == [[], [("amount_cents", 0.5)], []]  # reason codes above 0.5 only
    (uri, body), = store.objects.items()  # fmt: skip
    assert uri.startswith("s3://lake/batch-transform/cdp-score-") and uri.endswith("/input/rows.jsonl")
    assert [len(json.loads(line)["instances"]) for line in body.decode().splitlines()] == [2, 1]


def test_sagemaker_transform_failure_is_one_line_and_cleans_up():
    from botocore.stub import ANY, Stubber

    from cdp.registry.port import ModelVersion
    from cdp.transform.port import TransformError
    from cdp.transform.sagemaker import SageMakerTransform

    client = sagemaker_client()
    transform = SageMakerTransform(
        client, MemoryStore(), "lake", "img", "arn:aws:iam::1:role/r", sleep=lambda s: None
    )
    version = ModelVersion(
        MODEL, 1, "Approved", True, {}, {}, Lineage("h", ("a",), "c", "r"), "s3://lake/m/model.tar.gz", None
    )  # type: ignore[arg-type]
    with Stubber(client) as stub:
        stub.add_response("create_model", {"ModelArn": MODEL_ARN}, None)
        stub.add_response("create_transform_job", {"TransformJobArn": JOB_ARN}, None)
        failed = _described("Failed") | {"FailureReason": "ClientError: bad input\nsecond line"}
        stub.add_response("describe_transform_job", failed, {"TransformJobName": ANY})
        stub.add_response("delete_model", {}, {"ModelName": ANY})
        with pytest.raises(TransformError, match=r"failed: ClientError: bad input$"):
            transform.transform(version, pa.table({"a": [1]}), None)
        stub.assert_no_pending_responses()
    with pytest.raises(TransformError, match="CDP_INFERENCE_IMAGE_URI"):
        SageMakerTransform(client, MemoryStore(), "lake", None, None).transform(
            version, pa.table({"a": [1]}), None
        )


def sagemaker_client():  # noqa: ANN201 - a botocore client
    import boto3

    return boto3.client(
        "sagemaker", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def _described(status: str) -> dict:
    from datetime import datetime

    return {
        "TransformJobName": "j", "TransformJobArn": JOB_ARN, "TransformJobStatus": status,
        "ModelName": "m",
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/k"}}},
        "TransformResources": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1},
        "CreationTime": datetime(2020, 1, 1),
    }  # fmt: skip
