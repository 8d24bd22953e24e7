"""`CDP_AWS_ENDPOINT_URL` reaches every AWS adapter: each one, built by `Backends` in AWS mode, has its
clients at that endpoint (moto's server on 127.0.0.1, in this process) and one real call through the
adapter lands there. Unset, clients use AWS's own endpoints.

Boundary: moto has no AWS Payment Cryptography data plane, so the card verifier's endpoint is checked but
no CVV is computed through it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from cdp.backends import Backends
from cdp.settings import Settings
from tests.contract.moto_env import REGION, use_fake_aws_credentials

ACCOUNT = "123456789012"  # moto's default account


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1, with throw-away credentials for the module."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        use_fake_aws_credentials(monkeypatch)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture(scope="module")
def settings(endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        home=tmp_path_factory.mktemp("home"), backend="aws", aws_region=REGION, aws_endpoint_url=endpoint
    )


@pytest.fixture(scope="module")
def backends(settings: Settings) -> Backends:
    return Backends(settings)


class Server:
    """Direct clients of the emulator, to prepare what an adapter expects and to see what it did."""

    def __init__(self, url: str) -> None:
        self.url = url

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self.url)

    def queue(self, path: str, body: dict[str, Any]) -> None:
        """Queue canned answers through moto's API (Athena results, SageMaker endpoint bodies)."""
        payload = {"account_id": ACCOUNT, "region": REGION, **body}
        requests.post(f"{self.url}/moto-api/static/{path}", json=payload, timeout=5).raise_for_status()


def _bucket(server: Server, name: str, **options: Any) -> None:
    location = {"LocationConstraint": REGION}
    server.client("s3").create_bucket(Bucket=name, CreateBucketConfiguration=location, **options)


# Each case: prepare the emulator, build the adapter through `Backends`, make one real call through it and
# check the result on the emulator; returns the adapter's boto3 clients.
def _object_store(b: Backends, server: Server) -> list[Any]:
    _bucket_if_missing(server, b.settings.lake_bucket)
    b.object_store.put_bytes(f"s3://{b.settings.lake_bucket}/probe.txt", b"reached")
    body = server.client("s3").get_object(Bucket=b.settings.lake_bucket, Key="probe.txt")["Body"].read()
    assert body == b"reached"
    return [b.object_store._client]  # type: ignore[attr-defined]


def _catalog(b: Backends, server: Server) -> list[Any]:
    catalog = b.catalog
    catalog.poll_seconds = 0.01  # type: ignore[attr-defined]
    catalog.ensure_database()  # type: ignore[attr-defined]
    assert server.client("glue").get_database(Name="cdp")["Database"]["Name"] == "cdp"
    server.client("athena").create_work_group(Name="cdp", Configuration={})
    info = [{"Name": "n", "Label": "n", "Type": "bigint", "Nullable": "UNKNOWN"}]
    rows = [{"Data": [{"VarCharValue": "n"}]}, {"Data": [{"VarCharValue": "7"}]}]
    server.queue("athena/query-results", {"results": [{"rows": rows, "column_info": info}]})
    assert catalog.query("SELECT 7 AS n").to_pylist() == [{"n": 7}]
    assert server.client("athena").list_query_executions(WorkGroup="cdp")["QueryExecutionIds"]
    return [catalog.glue, catalog.athena]  # type: ignore[attr-defined]


def _oltp(b: Backends, server: Server) -> list[Any]:
    b.oltp.create_tables()  # type: ignore[attr-defined]
    assert "cdp-customers" in server.client("dynamodb").list_tables()["TableNames"]
    return [b.oltp._resource.meta.client]  # type: ignore[attr-defined]


def _stream(b: Backends, server: Server) -> list[Any]:
    server.client("kinesis").create_stream(StreamName=b.settings.stream_name, ShardCount=1)
    shards = b.stream.list_shards()
    assert len(shards) == 1
    assert "cdp-stream-checkpoints" in server.client("dynamodb").list_tables()["TableNames"]
    return [b.stream._client, b.stream._checkpoints._client]  # type: ignore[attr-defined]


def _idempotency(b: Backends, server: Server) -> list[Any]:
    index = b.idempotency_index("probe")
    index.create_table()  # type: ignore[attr-defined]
    index.record(["t-1"], "batch-1")
    assert set(index.lookup(["t-1"])) == {"t-1"}
    assert server.client("dynamodb").scan(TableName="cdp-landed-index")["Count"] == 1
    return [index.client]  # type: ignore[attr-defined]


def _online(b: Backends, server: Server) -> list[Any]:
    b.online_store.create_table()  # type: ignore[attr-defined]
    b.online_store.put_many({"card-1": b"state"})
    assert b.online_store.get_many(["card-1"]) == {"card-1": b"state"}
    assert server.client("dynamodb").scan(TableName="cdp-online-features")["Count"] == 1
    return [b.online_store.client]  # type: ignore[attr-defined]


def _api_keys(b: Backends, server: Server) -> list[Any]:
    b.api_keys.create_table()  # type: ignore[attr-defined]
    assert b.api_keys.list() == []
    assert server.client("dynamodb").describe_table(TableName="cdp-api-keys")
    return [b.api_keys.client]  # type: ignore[attr-defined]


def _data_keys(b: Backends, server: Server) -> list[Any]:
    from cdp.security.datakeys.dynamodb import create_table

    create_table(server.client("dynamodb"), "cdp-data-keys")
    assert b.data_keys.put_if_absent("sys_probe", b"wrapped", "v1", context={"use": "probe"})
    assert b.data_keys.get("sys_probe") == b"wrapped"
    return [b.data_keys.client]  # type: ignore[attr-defined]


def _erasure_requests(b: Backends, server: Server) -> list[Any]:
    server.client("dynamodb").create_table(
        TableName="cdp-erasure-requests",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    server.client("dynamodb").put_item(TableName="cdp-erasure-requests", Item={"id": {"S": "other"}})
    assert b.erasure_requests.get("absent") is None
    return [b.erasure_requests.client]  # type: ignore[attr-defined]


def _reply_store(b: Backends, server: Server) -> list[Any]:
    store = b.reply_store
    server.client("dynamodb").create_table(
        TableName=store.table_name,  # type: ignore[attr-defined]
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert store.transactions("absent") is None
    return [store.client]  # type: ignore[attr-defined]


def _audit_checkpoints(b: Backends, server: Server) -> list[Any]:
    _bucket(server, b.settings.audit_checkpoint_bucket, ObjectLockEnabledForBucket=True)
    assert b.audit_checkpoints.latest() is None
    assert server.client("s3").head_bucket(Bucket=b.settings.audit_checkpoint_bucket)
    return [b.audit_checkpoints.client]  # type: ignore[attr-defined]


def _keys(b: Backends, server: Server) -> list[Any]:
    kms = server.client("kms")
    kms.create_alias(AliasName=b.settings.kms_key_id, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    context = {"use": "probe", "id": "sys_probe"}
    fresh = b.keys.generate_data_key(context)
    assert b.keys.decrypt_data_key(fresh.wrapped, context) == fresh.plaintext
    return [b.keys.client]  # type: ignore[attr-defined]


def _audit(b: Backends, server: Server) -> list[Any]:
    b.audit.create_table()  # type: ignore[attr-defined]
    assert server.client("dynamodb").describe_table(TableName="cdp-audit")["Table"]["TableName"]
    return [b.audit.client]  # type: ignore[attr-defined]


def _event_bus(b: Backends, server: Server) -> list[Any]:
    server.client("events").put_rule(Name="cdp-probe", ScheduleExpression="rate(1 day)")
    assert "cdp-probe" in {rule.name for rule in b.event_bus.list_rules()}
    return [b.event_bus._client]  # type: ignore[attr-defined]


def _metrics(b: Backends, server: Server) -> list[Any]:
    from cdp.metrics.port import MetricDatum

    b.metrics.put_metric_data([MetricDatum("CDP/Probe", "Reached", 1.0, datetime.now(UTC))])
    listed = server.client("cloudwatch").list_metrics(Namespace="CDP/Probe")["Metrics"]
    assert [m["MetricName"] for m in listed] == ["Reached"]
    return [b.metrics._client]  # type: ignore[attr-defined]


def _alarms(b: Backends, server: Server) -> list[Any]:
    from monitoring.rules import drift_alarms

    alarm = drift_alarms("cdp-fraud")[0]
    b.alarms.put_alarm(alarm)
    assert b.alarms.get_alarm(alarm.name) == alarm
    described = server.client("cloudwatch").describe_alarms(AlarmNames=[alarm.name])["MetricAlarms"]
    assert [a["AlarmName"] for a in described] == [alarm.name]
    return [b.alarms._client]  # type: ignore[attr-defined]


def _model_registry(b: Backends, server: Server) -> list[Any]:
    _bucket_if_missing(server, b.settings.lake_bucket)
    created = server.client("sagemaker").create_model_package_group(ModelPackageGroupName="cdp-fraud")
    registry = b.model_registry
    assert registry.list("cdp-fraud") == []
    assert registry._group_arn("cdp-fraud") == created["ModelPackageGroupArn"]  # type: ignore[attr-defined]
    return [registry._sm, registry._store._client]  # type: ignore[attr-defined]


def _scoring_endpoint(b: Backends, server: Server) -> list[Any]:
    body = json.dumps({"model": "cdp-fraud", "model_version": 3, "predictions": [0.25]})
    answer = {"Body": body, "ContentType": "application/json", "InvokedProductionVariant": "AllTraffic"}
    server.queue("sagemaker/endpoint-results", {"results": [answer]})
    endpoint = b.scoring_endpoint(lambda: pytest.fail("AWS mode scores on the endpoint"))
    batch = endpoint.score([{"amount": 12.5}])
    assert (batch.model_version, [s.probability for s in batch.scores]) == (3, [0.25])
    return [endpoint.client]  # type: ignore[attr-defined]


def _identity(b: Backends, server: Server) -> list[Any]:
    caller = server.client("sts").get_caller_identity()["Arn"]
    assert b.identity.current().id == caller
    return [b.identity._sts]  # type: ignore[attr-defined]


def _card_verifier(b: Backends, server: Server) -> list[Any]:
    return [b.card_verifier._client]  # type: ignore[attr-defined]  # no data plane in moto


def _bucket_if_missing(server: Server, name: str) -> None:
    existing = {x["Name"] for x in server.client("s3").list_buckets()["Buckets"]}
    if name not in existing:
        _bucket(server, name)


def _batch_transform(b: Backends, server: Server) -> list[Any]:
    transform = b.batch_transform(lambda: pytest.fail("AWS mode scores in a transform job"))
    return [transform.client]  # type: ignore[attr-defined]


def _mail(b: Backends, server: Server) -> list[Any]:
    chosen = Backends(b.settings.model_copy(update={"notify_mail": "sns", "sns_topic_arn": "arn:aws:sns:x"}))
    return [chosen.mail.client]  # type: ignore[attr-defined]


def _text_writer(b: Backends, server: Server) -> list[Any]:
    chosen = Backends(b.settings.model_copy(update={"notify_writer": "bedrock"}))
    return [chosen.text_writer.client]  # type: ignore[attr-defined]


CASES: dict[str, Callable[[Backends, Server], list[Any]]] = {
    "object_store": _object_store,
    "catalog": _catalog,
    "oltp": _oltp,
    "stream": _stream,
    "idempotency_index": _idempotency,
    "online_store": _online,
    "api_keys": _api_keys,
    "data_keys": _data_keys,
    "erasure_requests": _erasure_requests,
    "reply_store": _reply_store,
    "audit_checkpoints": _audit_checkpoints,
    "keys": _keys,
    "audit": _audit,
    "event_bus": _event_bus,
    "metrics": _metrics,
    "alarms": _alarms,
    "model_registry": _model_registry,
    "scoring_endpoint": _scoring_endpoint,
    "identity": _identity,
    "card_verifier": _card_verifier,
    "batch_transform": _batch_transform,
    "mail": _mail,
    "text_writer": _text_writer,
}


@pytest.mark.parametrize("adapter", sorted(CASES))
def test_every_aws_adapter_reaches_the_configured_endpoint(
    adapter: str, backends: Backends, endpoint: str
) -> None:
    clients = CASES[adapter](backends, Server(endpoint))
    assert clients
    for client in clients:
        assert client.meta.endpoint_url == endpoint
        assert client.meta.region_name == REGION
        assert client.meta.config.retries["mode"] == "standard"


def test_every_adapter_of_backends_is_covered() -> None:
    """A port added to `Backends` must join `CASES` (the protector and vault compose other ports)."""
    composed = {"protector", "vault", "settings", "aws"}
    # no boto3 client: MLflow's own client (the SageMaker MLflow plugin signs its calls), and the home's
    # state, which does not exist in AWS (the services keep it; asking raises one line)
    composed |= {"experiment_tracker", "home_state"}
    ports = {
        name
        for name in dir(Backends)
        if not name.startswith("_") and name not in composed
    }  # fmt: skip
    assert ports == set(CASES)


def test_unset_endpoint_means_the_aws_endpoint_of_the_region(tmp_path: Path, monkeypatch) -> None:
    from cdp.aws_clients import aws_client, aws_resource

    use_fake_aws_credentials(monkeypatch)
    settings = Settings(home=tmp_path, backend="aws", aws_region=REGION)
    assert settings.aws_endpoint_url is None
    assert aws_client(settings, "s3").meta.endpoint_url == f"https://s3.{REGION}.amazonaws.com"
    assert aws_client(settings, "kinesis").meta.endpoint_url == f"https://kinesis.{REGION}.amazonaws.com"
    resource = aws_resource(settings, "dynamodb")
    assert resource.meta.client.meta.endpoint_url == f"https://dynamodb.{REGION}.amazonaws.com"
    assert Settings(home=tmp_path, aws_endpoint_url="").aws_endpoint_url is None  # empty: unset


def test_the_sagemaker_sdk_session_uses_the_endpoint_for_its_own_clients(
    settings: Settings, endpoint: str
) -> None:
    """`run-pipeline` on SageMaker: the SDK's sagemaker, runtime and S3 clients all at the endpoint."""
    from pipelines.sdk_environment import prepare_sdk_environment

    prepare_sdk_environment(settings.aws_region)
    from pipelines.sagemaker_session import pipeline_session

    session = pipeline_session(settings, settings.lake_bucket)
    for client in (session.sagemaker_client, session.sagemaker_runtime_client, session.s3_client):
        assert client.meta.endpoint_url == endpoint
    sts = session.boto_session.client("sts", endpoint_url="https://sts.eu-west-1.amazonaws.com")
    assert sts.meta.endpoint_url == endpoint  # even where the SDK names an AWS endpoint itself
    other = pipeline_session(settings, settings.lake_bucket, region="us-east-1")
    assert other.boto_region_name == "us-east-1" and other.sagemaker_client.meta.endpoint_url == endpoint
