"""The app under abuse, in-process: bounded requests, strict inputs, security headers, client in the log.

Each test here is a finding of an attack on the API with a valid key (headers, bodies, types, dates,
numbers): the request must be refused with its 4xx and a one-line reason, never read further than
needed, never answered 5xx, and never scored.
"""

from __future__ import annotations

import json
import logging
import re
import time

import anyio
import pytest
from fastapi.testclient import TestClient

from inference.config import ServingConfig
from inference.invocations import invoke
from inference.loaded import load_folder
from inference.payloads import MAX_JSON_DEPTH, PayloadError
from tests.test_inference_app import auth, make_app, transaction
from tests.test_inference_app import platform as platform  # noqa: F401 - the module-scoped fixture

SECURITY_HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}


@pytest.fixture(scope="module")
def client(platform):  # noqa: ANN001, ANN201, F811
    with TestClient(make_app(platform)) as c:
        yield c


async def _asgi(app, method: str, path: str, headers: dict[str, str], chunks, *, hold=None):  # noqa: ANN001, ANN202
    """Call `app` as a server would; (status, headers, body, body chunks the app read). `chunks` is an
    iterable of bytes given one per `receive`; `hold` (an anyio.Event) makes `receive` wait for it."""
    iterator = iter(chunks)
    read = 0
    out: dict = {"status": None, "headers": {}, "body": b""}

    async def receive() -> dict:
        nonlocal read
        if hold is not None:
            await hold.wait()
        try:
            chunk = next(iterator)
        except StopIteration:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("203.0.113.9", 50000), "server": ("127.0.0.1", 8080),
    }  # fmt: skip
    await app(scope, receive, send)
    return out["status"], out["headers"], out["body"], read


def _started(platform, **config):  # noqa: ANN001, ANN202, F811
    app = make_app(platform, **config)
    app.state.serving.start()
    return app


# -- bounded requests --------------------------------------------------------------------------------------
def test_an_unauthenticated_body_is_never_read(platform):  # noqa: F811
    app = _started(platform)
    endless = (b"x" * 65536 for _ in range(10_000))  # 655 MB if it were read
    status, headers, body, read = anyio.run(
        _asgi, app, "POST", "/v1/fraud/score", {"content-type": "application/json"}, endless
    )
    assert (status, read) == (401, 0)
    assert headers["www-authenticate"] == "Bearer"


def test_a_declared_oversized_body_is_refused_before_it_is_read(platform):  # noqa: F811
    app = _started(platform)
    key = auth(platform.keys["all"])
    headers = {**key, "content-type": "application/json", "content-length": str(200 << 20)}
    status, _, body, read = anyio.run(_asgi, app, "POST", "/v1/fraud/score:batch", headers, [b"{"])
    assert (status, read) == (413, 0)
    assert json.loads(body) == {"detail": "the body is larger than 2 MB"}


def test_a_chunked_body_is_cut_as_soon_as_it_passes_the_route_limit(platform):  # noqa: F811
    app = _started(platform)
    key = auth(platform.keys["all"])
    endless = (b" " * 65536 for _ in range(10_000))  # no Content-Length: counted as it arrives
    status, _, body, read = anyio.run(
        _asgi, app, "POST", "/v1/fraud/score", {**key, "content-type": "application/json"}, endless
    )
    assert status == 413 and json.loads(body)["detail"] == "the body is larger than 256 KB"
    assert read == 5  # 256 KB limit: the fifth 64 KB chunk passes it, nothing more is read
    status, _, _, read = anyio.run(
        _asgi,
        app,
        "POST",
        "/invocations",
        {**key, "content-type": "text/csv"},
        (b"1" * 65536 for _ in range(10_000)),
    )
    assert status == 413 and read == 97  # 6 MB


def test_too_many_or_too_large_headers_get_431(client):
    many = {f"x-h{i}": "1" for i in range(1000)}
    r = client.get("/ping", headers=many)
    assert r.status_code == 431 and r.json() == {"detail": "at most 100 headers"}
    r = client.get("/ping", headers={"x-big": "a" * 100_000})
    assert r.status_code == 431 and r.headers["cache-control"] == "no-store"


def test_beyond_the_concurrency_requests_get_503_and_ping_still_answers(platform):  # noqa: F811
    app = _started(platform, max_concurrency=2)
    key = auth(platform.keys["all"])
    results: list = []

    async def main() -> None:
        hold = anyio.Event()
        async with anyio.create_task_group() as group:
            for _ in range(2):  # two requests whose bodies do not come: both slots taken

                async def stuck() -> None:
                    results.append(await _asgi(app, "POST", "/invocations", key, [b"{}"], hold=hold))

                group.start_soon(stuck)
            await anyio.sleep(0.2)
            results.append(("busy", await _asgi(app, "GET", "/v1/models", key, [])))
            results.append(("ping", await _asgi(app, "GET", "/ping", {}, [])))
            hold.set()

    anyio.run(main)
    busy = dict(r for r in results if r[0] in ("busy", "ping"))
    assert busy["busy"][0] == 503 and busy["busy"][1]["retry-after"] == "1"
    assert busy["ping"][0] == 200
    assert app.user_middleware  # (the guard is installed) and the slots are free again afterwards
    assert anyio.run(_asgi, app, "GET", "/v1/models", key, [])[0] == 200


def test_a_request_over_the_timeout_gets_504_and_its_work_is_cancelled(platform):  # noqa: F811
    app = _started(platform, request_timeout_seconds=0.3)
    key = auth(platform.keys["all"])

    async def slow_client() -> tuple:
        never = anyio.Event()  # a body that never arrives (a client holding its request open)
        headers = {**key, "content-type": "application/json"}
        return await _asgi(app, "POST", "/invocations", headers, [b"{}"], hold=never)

    started = time.monotonic()
    status, headers, body, _ = anyio.run(slow_client)
    assert time.monotonic() - started < 5
    assert status == 504 and json.loads(body) == {"detail": "the request took longer than 0.3 s"}
    assert headers["x-content-type-options"] == "nosniff"


# -- security headers and the access log -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [("GET", "/ping", 200), ("GET", "/v1/models", 401), ("GET", "/nowhere", 404),
     ("POST", "/v1/fraud/score", 413), ("POST", "/v1/fraud/score", 422), ("GET", "/openapi.json", 200)],
)  # fmt: skip
def test_every_response_carries_the_security_headers(client, platform, method, path, expected):  # noqa: F811
    headers = {} if expected == 401 else auth(platform.keys["all"])
    body = b"{" + b" " * (300 << 10) + b"}" if expected == 413 else (b"{}" if method == "POST" else None)
    r = client.request(method, path, headers={**headers, "content-type": "application/json"}, content=body)
    assert r.status_code == expected
    for name, value in SECURITY_HEADERS.items():
        assert r.headers[name] == value, name
    assert "strict-transport-security" not in r.headers


def test_the_docs_get_their_own_policy_that_allows_what_they_load(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger-ui" in r.text
    policy = r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy and r.headers["cache-control"] == "no-store"
    for source in re.findall(r'(?:src|href)="(https://[^/"]+)', r.text):
        assert source in policy, source  # every script, style and icon the page loads is allowed


def test_hsts_is_sent_when_served_behind_tls(platform):  # noqa: F811
    with TestClient(make_app(platform, hsts_seconds=31_536_000)) as c:
        assert c.get("/ping").headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


@pytest.mark.parametrize("mode", ["hashed", "plain"])
def test_the_access_log_records_the_client_address_or_its_keyed_hash(platform, caplog, mode):  # noqa: F811
    app = _started(platform, client_address=mode, client_address_key="k" * 32)
    with caplog.at_level(logging.INFO, logger="cdp.inference.access"):
        anyio.run(_asgi, app, "GET", "/ping", {}, [])
    line = json.loads([r.getMessage() for r in caplog.records if r.name == "cdp.inference.access"][-1])
    if mode == "plain":
        assert line["client"] == "203.0.113.9"
    else:
        assert re.fullmatch(r"[0-9a-f]{16}", line["client"]) and "203.0.113" not in json.dumps(line)


# -- strict schemas ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [{"amount_cents": True}, {"amount_cents": "4500"}, {"amount_cents": 4500.0}, {"mcc": "7995"},
     {"merchant_id": 10**30}, {"ts": "0001-01-01T00:00:00"}, {"ts": "9999-12-31T23:59:59"},
     {"ts": "2019-02-01T12:00:00+02:00"}, {"ts": "2019-02-01T12:00:00Z"}, {"ts": 1_548_000_000},
     {"ts": "1548000000"}, {"ts": "1989-12-31T23:59:59"}],
    ids=lambda c: f"{next(iter(c))}={next(iter(c.values()))!r}"[:40],
)  # fmt: skip
def test_loose_types_and_dates_out_of_the_window_get_422(client, platform, change):  # noqa: F811
    r = client.post("/v1/fraud/score", headers=auth(platform.keys["all"]),
                    json={"transaction": transaction(platform, **change)})  # fmt: skip
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][-1] in change


def test_record_event_is_refused_whatever_its_value(client, platform):  # noqa: F811
    for value in ("yes", 1, "true"):
        r = client.post("/v1/fraud/score", headers=auth(platform.keys["all"]),
                        json={"transaction": transaction(platform), "record_event": value})  # fmt: skip
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "record_event"]


def test_a_batch_names_the_transaction_out_of_the_window(client, platform):  # noqa: F811
    txns = [transaction(platform, 0), transaction(platform, 1, ts="2999-01-01T00:00:00")]
    r = client.post("/v1/fraud/score:batch", headers=auth(platform.keys["all"]), json={"transactions": txns})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "transactions", 1, "ts"]
    ok = client.post("/v1/fraud/score", headers=auth(platform.keys["all"]), json={"transaction": txns[0]})
    assert ok.status_code == 200


# -- /invocations numbers ---------------------------------------------------------------------------------
def _row(platform) -> dict:  # noqa: ANN001, F811
    """One encoded feature row as JSON values (missing values as null)."""
    values = platform.fraud_frame.iloc[0].tolist()
    return {c: (None if v != v else v) for c, v in zip(platform.fraud_frame.columns, values, strict=True)}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("Infinity", "NaN and Infinity"), ("-Infinity", "NaN and Infinity"), ("NaN", "NaN and Infinity"),
     ("1e999", "too large"), ("1e308", "row 1, feature"), ('"0.5"', "must be a number"),
     ("[1]", "a list or an object"), ('{"a": 1}', "a list or an object"), ('"abc"', "must be a number")],
)  # fmt: skip
def test_invocations_refuse_what_is_not_a_finite_number_with_400(client, platform, raw, reason):  # noqa: F811
    row = _row(platform)
    first = platform.fraud_frame.columns[0]
    text = json.dumps({"instances": [row, {**row, first: "@@"}]}).replace('"@@"', raw)
    headers = {**auth(platform.keys["all"]), "content-type": "application/json"}
    r = client.post("/invocations", headers=headers, content=text)
    assert r.status_code == 400, r.text
    assert reason in r.json()["detail"]
    if "row" in reason:
        assert r.json()["detail"].startswith(f"row 1, feature '{first}'")


@pytest.mark.parametrize("cell", ["inf", "-inf", "nan", "Infinity", "1e999", "1_0"])
def test_invocations_csv_refuses_non_finite_cells(client, platform, cell):  # noqa: F811
    values = [str(v) for v in platform.fraud_frame.iloc[0].tolist()]
    values[2] = cell
    r = client.post("/invocations", headers={**auth(platform.keys["all"]), "content-type": "text/csv"},
                    content=",".join(values) + "\n")  # fmt: skip
    assert r.status_code == 400 and "must be a number" in r.json()["detail"], r.text


def test_invocations_refuse_deep_nesting_and_duplicate_keys(client, platform):  # noqa: F811
    headers = {**auth(platform.keys["all"]), "content-type": "application/json"}
    deep = "[" * 1000 + "]" * 1000
    r = client.post("/invocations", headers=headers, content=deep)
    assert r.status_code == 400 and f"deeper than {MAX_JSON_DEPTH}" in r.json()["detail"]
    deep = '{"instances": ' + "[" * 100_000 + "]" * 100_000 + "}"
    assert client.post("/invocations", headers=headers, content=deep).status_code == 400
    text = '{"instances": [{"amount_cents": 1, "amount_cents": 2}]}'
    r = client.post("/invocations", headers=headers, content=text)
    assert r.status_code == 400 and "same key twice" in r.json()["detail"]


def test_invocations_use_the_model_feature_ranges_when_the_spec_has_them(tmp_path):
    import numpy as np
    import xgboost

    x = np.random.default_rng(1).random((40, 2)).astype(np.float32)
    booster = xgboost.train({"objective": "binary:logistic", "nthread": 1},
                            xgboost.DMatrix(x, label=x[:, 0] > 0.5, feature_names=["a", "b"]), 2)  # fmt: skip
    booster.save_model(str(tmp_path / "model.ubj"))
    (tmp_path / "features.json").write_text(json.dumps({"features": ["a", "b"], "ranges": {"a": [0, 1]}}))
    model = load_folder(tmp_path, "m", 1)

    def call(a: float, b: float) -> int:
        body = json.dumps({"instances": [{"a": a, "b": b}]}).encode()
        try:
            return invoke(model, body, "application/json", "", max_rows=10, reason_codes=0).status_code
        except PayloadError as error:
            assert "row 0, feature" in str(error)
            return error.status_code

    assert call(0.5, 1e9) == 200  # b has no range: +-1e15
    assert call(1.5, 0.5) == 400  # outside a's training range
    assert call(0.5, 1e16) == 400


def test_the_serving_config_reads_the_bounds_from_the_settings(platform):  # noqa: F811
    settings = platform.settings.model_copy(
        update={"serve_max_concurrency": 7, "serve_client_address": "plain"}
    )
    config = ServingConfig.from_settings(settings)
    assert (config.max_concurrency, config.client_address, config.score_body_limit_bytes) == (
        7,
        "plain",
        256 << 10,
    )


def test_a_request_frees_its_slot_once_its_response_is_out():
    """Work after the response (background tasks, logging) holds no slot: a keep-alive client's next
    request is admitted at once (200 clients saw 503s under a bound of 256 before)."""
    from inference.request_guard import RequestGuard, RequestLimits

    after_response = anyio.Event()

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        if scope["path"] == "/first":
            await after_response.wait()  # still running after its response is out

    guard = RequestGuard(app, limits=RequestLimits(max_concurrency=1))

    async def call(path: str) -> int:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await guard(scope, receive, send)
        return sent[0]["status"]

    statuses: dict[str, int] = {}

    async def main() -> None:
        async with anyio.create_task_group() as group:

            async def first() -> None:
                statuses["first"] = await call("/first")

            group.start_soon(first)
            await anyio.sleep(0.05)  # the first response is out, its app still running
            statuses["second"] = await call("/second")
            assert guard.in_flight == 0
            after_response.set()
        assert guard.in_flight == 0

    anyio.run(main)
    assert statuses == {"first": 200, "second": 200}
