"""The AWS side of the aws-mode end-to-end test: moto's server on 127.0.0.1, the resources the CDK app
creates (named by `cdp.aws_resources` and `infra.resource_names`), and a proxy in front of the server that
answers SageMaker `InvokeEndpoint` with a real inference container (moto cannot run a model).
"""

from __future__ import annotations

import http.client
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
from moto.server import ThreadedMotoServer

from cdp.aws_resources import AwsResources
from cdp.settings import Settings

ACCOUNT = "123456789012"  # moto's account
_INVOCATIONS = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations$")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on a free port of 127.0.0.1; yields its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def create_platform_resources(settings: Settings) -> AwsResources:
    """What the CDK app creates for the platform, on the emulator `settings.aws_endpoint_url` points at."""
    from cdp.backends import Backends
    from infra.resource_names import model_package_groups
    from infra.table_specs import table_specs

    names = AwsResources.from_settings(settings)
    url, region = settings.aws_endpoint_url, settings.aws_region

    def client(service: str) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=url)

    location = {"CreateBucketConfiguration": {"LocationConstraint": region}}
    client("s3").create_bucket(Bucket=names.lake_bucket, **location)
    client("s3").create_bucket(
        Bucket=names.audit_checkpoint_bucket, ObjectLockEnabledForBucket=True, **location
    )
    dynamodb = client("dynamodb")
    for spec in table_specs():
        keys = [(spec.partition_key, "HASH")] + ([(spec.sort_key, "RANGE")] if spec.sort_key else [])
        dynamodb.create_table(
            TableName=names.table(spec.suffix),
            KeySchema=[{"AttributeName": a, "KeyType": t} for a, t in keys],
            AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a, _ in keys],
            BillingMode="PAY_PER_REQUEST",
        )
    Backends(settings).audit.create_table()  # type: ignore[attr-defined]  # the audit log's own schema
    client("kinesis").create_stream(StreamName=names.stream, ShardCount=1)
    client("glue").create_database(DatabaseInput={"Name": names.glue_database})
    athena = client("athena")
    athena.create_work_group(
        Name=names.workgroup, Configuration={"ResultConfiguration": {"OutputLocation": names.athena_results}}
    )
    athena.create_work_group(
        Name=names.analyst_workgroup,
        Configuration={"ResultConfiguration": {"OutputLocation": names.athena_analyst_results}},
    )
    kms = client("kms")
    kms.create_alias(AliasName=names.kms_alias, TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    if names.event_bus != "default":
        client("events").create_event_bus(Name=names.event_bus)
    for group in model_package_groups():
        client("sagemaker").create_model_package_group(ModelPackageGroupName=group)
    return names


@dataclass
class Invocation:
    """One `InvokeEndpoint` the proxy answered: the endpoint, the exact body, the container's status."""

    endpoint: str
    body: bytes
    content_type: str
    status: int


@dataclass
class EndpointProxy:
    """Forwards every request to moto, except `InvokeEndpoint` on an InService endpoint of moto, which the
    container at `container_url` answers (its `/invocations`, with the caller's body and content type)."""

    moto_url: str
    region: str
    container_url: str | None = None
    invocations: list[Invocation] = field(default_factory=list)
    url: str = ""

    def endpoint_in_service(self, name: str) -> bool:
        sm = boto3.client("sagemaker", region_name=self.region, endpoint_url=self.moto_url)
        try:
            return sm.describe_endpoint(EndpointName=name)["EndpointStatus"] == "InService"
        except sm.exceptions.ClientError:
            return False


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def _send(url: str, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request(method, path, body=body or None, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


@contextmanager
def endpoint_proxy(moto_url: str, region: str) -> Iterator[EndpointProxy]:
    """An `EndpointProxy` listening on 127.0.0.1 (its `url`), for the life of the block."""
    proxy = EndpointProxy(moto_url, region)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            return

        def _forward(self) -> None:
            body = _read_body(self)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            match = _INVOCATIONS.match(urlsplit(self.path).path)
            if self.command == "POST" and match and proxy.container_url:
                name = match["name"]
                if not proxy.endpoint_in_service(name):
                    status, answer_headers = 400, [("Content-Type", "application/json")]
                    answer = b'{"__type":"ValidationError","message":"Endpoint not found or not InService"}'
                else:
                    content_type = self.headers.get("Content-Type", "application/json")
                    forwarded = {"Content-Type": content_type, "Accept": self.headers.get("Accept", "*/*")}
                    status, answer_headers, answer = _send(
                        proxy.container_url, "POST", "/invocations", forwarded, body
                    )
                    proxy.invocations.append(Invocation(name, body, content_type, status))
                    answer_headers = [h for h in answer_headers if h[0].lower() == "content-type"]
                    answer_headers.append(("x-Amzn-Invoked-Production-Variant", "AllTraffic"))
            else:
                status, answer_headers, answer = _send(proxy.moto_url, self.command, self.path, headers, body)
            self.send_response(status)
            for key, value in answer_headers:
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _forward

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()
