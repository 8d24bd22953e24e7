"""Fuzzing of the inference app: schemathesis against its own OpenAPI document (in-process), and
hand-written hostile requests to real servers on 127.0.0.1 (below).

Every operation of `/openapi.json` gets a bounded number of generated requests (schemathesis' positive
and negative generation: valid and invalid bodies and paths) sent through ASGI with an API key holding
every scope. Each response must not be a server error, must use a status code the document declares for
the operation, a declared content type, and a body that conforms to the declared schema.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_inference_app import auth, make_app
from tests.test_inference_app import platform as platform  # noqa: F401 - the module-scoped fixture

EXAMPLES_PER_OPERATION = 30  # valid and invalid requests together, per operation
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(platform):  # noqa: ANN001, ANN201, F811 - the platform fixture imported above
    """The app's OpenAPI schema, loaded through ASGI from the running app (champions loaded)."""
    app = make_app(platform)
    app.state.serving.start()  # the ASGI transport does not run the lifespan
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.serving.stop()


# `schemathesis.pytest.from_fixture` needs a private pytest attribute that pytest 9 removed: the operations
# are parametrized here, and each test runs Hypothesis over the operation's strategy itself.
OPERATIONS = [
    ("GET", "/ping"),
    ("POST", "/invocations"),
    ("POST", "/v1/fraud/score"),
    ("POST", "/v1/fraud/score:batch"),
    ("GET", "/v1/customers/{token}/profile"),
    ("GET", "/v1/models"),
    ("POST", "/v1/models/reload"),
    ("POST", "/v1/notices/reply"),
]


def test_the_fuzzed_operations_are_every_operation_of_the_document(api_schema) -> None:  # noqa: ANN001
    found = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_operation_answers_within_its_documented_contract(api_schema, platform, method, path):  # noqa: ANN001, F811
    operation = api_schema[path][method]
    headers = auth(platform.keys["all"])
    seen: list[int] = []

    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(GenerationMode.NEGATIVE)

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,  # the same examples every run
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case) -> None:  # noqa: ANN001
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen.append(response.status_code)

    run()
    print(method, path, sorted(set(seen)))
    assert seen  # the operation was really exercised


# -- hostile requests to real servers on 127.0.0.1 ---------------------------------------------------------
# The platform's app under uvicorn (as `cdp serve` runs it) and the SageMaker container's `serve`, each in
# its own process: raw HTTP over sockets (so framing itself can be hostile), no 5xx, and the server keeps
# answering afterwards; a flood of oversized bodies must not grow the server's memory.
LAUNCH_PLATFORM_APP = """
import sys
from pathlib import Path

import uvicorn

from cdp.apikeys.sqlite import SqliteApiKeyStore
from cdp.backends import Backends
from cdp.settings import Settings
from inference.app import create_app
from inference.config import ServingConfig
from inference.serve import uvicorn_limits

home, keys, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
config = ServingConfig(reload_seconds=0, rate_per_second=100000.0, rate_burst=100000)
app = create_app(backends=Backends(Settings(home=home)), config=config, key_store=SqliteApiKeyStore(keys))
uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning", **uvicorn_limits(config))
"""
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _server(command: list[str], env: dict[str, str], port: int, log: Path):  # noqa: ANN202
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while _status(port, b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n") != 200:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "the server did not answer /ping in time"
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def live_app(platform, tmp_path_factory):  # noqa: ANN001, ANN201, F811
    """The platform's app under uvicorn: (port, process, API key)."""
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-c", LAUNCH_PLATFORM_APP, str(platform.settings.home),
               str(platform.root / "keys.sqlite3"), str(port)]  # fmt: skip
    with _server(command, env, port, tmp_path_factory.mktemp("live") / "serve.log") as process:
        yield port, process, platform.keys["all"]


@pytest.fixture(scope="module")
def live_container(tmp_path_factory):  # noqa: ANN201
    """The container's `serve` (one worker: the process measured is the server) over a tiny booster."""
    import numpy as np
    import xgboost

    folder = tmp_path_factory.mktemp("opt-ml-model")
    x = np.random.default_rng(1).random((40, 2)).astype(np.float32)
    booster = xgboost.train({"objective": "binary:logistic", "nthread": 1},
                            xgboost.DMatrix(x, label=x[:, 0] > 0.5, feature_names=["a", "b"]), 2)  # fmt: skip
    booster.save_model(str(folder / "model.ubj"))
    port = _free_port()
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT), "HOME": str(folder.parent),
           "SM_MODEL_DIR": str(folder), "SAGEMAKER_BIND_TO_PORT": str(port),
           "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}  # fmt: skip
    command = [sys.executable, "-m", "inference.container.serve", "serve"]
    with _server(command, env, port, tmp_path_factory.mktemp("live-container") / "serve.log") as process:
        yield port, process, None


def _status(port: int, head: bytes, body=b"", timeout: float = 10.0) -> int | None:  # noqa: ANN001
    """Send raw bytes (`body`: bytes, or an iterable of chunks); the first response's status, None when
    the server closed the connection without one."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            try:
                s.sendall(head)
                for chunk in [body] if isinstance(body, bytes) else body:
                    s.sendall(chunk)
            except OSError:  # the server answered and closed before taking everything
                pass
            data = b""
            while b"\r\n" not in data:
                part = s.recv(4096)
                if not part:
                    break
                data += part
    except OSError:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else None


def _post(path: str, key: str | None, body: bytes, content_type: str = "application/json") -> bytes:
    auth_line = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: {content_type}\r\n{auth_line}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body  # fmt: skip


def _chunked(path: str, key: str | None, total: int, chunk: int = 1 << 20):  # noqa: ANN202
    auth_line = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{auth_line}"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    pieces = (f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n" for _ in range(total // chunk))
    return head, pieces


def _hostile(key: str | None, path: str) -> dict[str, tuple[bytes, object, set[int | None]]]:
    """name -> (head, body, the statuses allowed). None: the server may close without an answer."""
    row = '{"a": 0.5, "b": 0.5}'
    huge_head = (f"POST {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n"
                 f"Content-Length: {200 << 20}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    cases = {
        "huge declared": (huge_head, b"{" + b" " * (1 << 20), {413, None}),
        "huge chunked": (*_chunked(path, key, 40 << 20), {413, None}),
        "deep": (_post(path, key, b"[" * 5000 + b"]" * 5000), b"", {400, 422}),
        "non-finite": (
            _post(path, key, f'{{"instances": [{row[:-1]}, "c": Infinity}}]}}'.encode()),
            b"",
            {400, 422},
        ),
        "overflow": (_post(path, key, b'{"instances": [{"a": 1e999, "b": 1}]}'), b"", {400, 422}),
        "wrong types": (
            _post(path, key, b'{"instances": [{"a": [1], "b": {"x": 1}}], "transaction": true}'),
            b"",
            {400, 422},
        ),  # fmt: skip
        "unicode": (
            _post(path, key, '{"instances": [{"a": "\\u0000\u202e\U0001f4a3", "b": 1}]}'.encode()),
            b"",
            {400, 422},
        ),  # fmt: skip
        "invalid utf-8": (_post(path, key, b'{"instances": [{"a": "\xff\xfe", "b": 1}]}'), b"", {400, 422}),
        "duplicate keys": (
            _post(path, key, b'{"instances": [{"a": 1, "a": 2, "b": 1}]}'),
            b"",
            {200, 400, 422},
        ),
        "csv inf": (_post(path, key, b"inf,1\n", "text/csv"), b"", {400, 415, 422}),
        "CL and TE": (
            (
                f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n"
                "\r\n0\r\n\r\nGET /ping HTTP/1.1\r\nHost: t\r\n\r\n"
            ).encode(),
            b"",
            {400},
        ),  # fmt: skip
        "CL too large": (
            (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{{}}").encode(),
            b"",
            {400, 401, None},
        ),  # fmt: skip
        "CL too small": (
            _post(path, key, b"{}").replace(b"Content-Length: 2", b"Content-Length: 1"),
            b"",
            {400, 401, 422},
        ),  # fmt: skip
        "CL not a number": (
            (f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: 1e3\r\n\r\n{{}}").encode(),
            b"",
            {400},
        ),  # fmt: skip
        "many headers": (
            b"GET /ping HTTP/1.1\r\nHost: t\r\n"
            + b"".join(b"x-%d: 1\r\n" % i for i in range(1000))
            + b"\r\n",
            b"",
            {400, 431},
        ),  # fmt: skip
        "large header": (
            b"GET /ping HTTP/1.1\r\nHost: t\r\nx-big: " + b"a" * 100_000 + b"\r\n\r\n",
            b"",
            {400, 431},
        ),  # fmt: skip
    }
    return cases


@pytest.mark.parametrize("server", ["live_app", "live_container"])
def test_hostile_requests_to_a_real_server_get_4xx_never_5xx(request, server):  # noqa: ANN001
    port, process, key = request.getfixturevalue(server)
    paths = ["/invocations", "/v1/fraud/score:batch"] if server == "live_app" else ["/invocations"]
    seen = {}
    for path in paths:
        for name, (head, body, allowed) in _hostile(key, path).items():
            status = _status(port, head, body)
            seen[f"{path} {name}"] = status
            assert status in allowed, (path, name, status)
            assert process.poll() is None
    assert _status(port, b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n") == 200  # still answering
    print(seen)


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.slow
@pytest.mark.parametrize("server", ["live_app", "live_container"])
def test_a_flood_of_oversized_bodies_keeps_the_server_memory_bounded(request, server):  # noqa: ANN001
    port, process, key = request.getfixturevalue(server)
    statuses: list[int | None] = []

    def flood(i: int, until: float) -> None:
        while time.monotonic() < until:
            path = "/invocations" if i % 2 or server == "live_container" else "/v1/fraud/score:batch"
            head, body = _chunked(path, key if i % 3 else None, 64 << 20)
            statuses.append(_status(port, head, body, timeout=30))

    # a short flood first: the server's first refusals allocate what it keeps (buffers, thread arenas)
    warm = [threading.Thread(target=flood, args=(i, time.monotonic() + 2)) for i in range(6)]
    for t in warm:
        t.start()
    for t in warm:
        t.join()
    before = _rss_bytes(process.pid)
    peak = before
    stop = time.monotonic() + 10
    threads = [threading.Thread(target=flood, args=(i, stop)) for i in range(6)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        peak = max(peak, _rss_bytes(process.pid))
        time.sleep(0.1)
    assert statuses and all(s is None or s in (401, 413) for s in statuses), set(statuses)
    print("GROWTH", before >> 20, (peak - before) >> 20)
    assert peak - before <= 200 << 20, f"RSS grew by {(peak - before) >> 20} MB"
    assert _status(port, b"GET /ping HTTP/1.1\r\nHost: t\r\n\r\n") == 200


@pytest.mark.slow
def test_refused_keys_leak_nothing(live_app):  # noqa: ANN001
    """Thousands of 401s (no key, a malformed key) leave the server's memory where it was: a refusal
    must not keep the request alive (a shared exception instance once chained every refusal's frames)."""
    port, process, _ = live_app
    for key in (None, "nope"):  # warm-up: the first refusals allocate what the server keeps
        for _ in range(200):
            _status(port, _post("/invocations", key, b'{"instances": [1]}'))
    before = _rss_bytes(process.pid)
    statuses = {_status(port, _post("/invocations", key, b'{"instances": [1]}'))
                for _ in range(2500) for key in (None, "nope")}  # fmt: skip
    assert statuses == {401}
    grown = _rss_bytes(process.pid) - before
    assert grown <= 12 << 20, f"RSS grew by {grown >> 20} MB"
