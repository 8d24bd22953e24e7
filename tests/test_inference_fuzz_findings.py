"""Findings of fuzzing the public API that no other test held: each test fails on the code before its fix.

- a batch of 100,000 empty objects (300 KB, under the 2 MB body limit) was validated item by item before
  the batch size was checked: 800,000 field errors, tens of seconds of CPU, a megabyte answer per few
  kilobytes asked; the bound is now the request model's `maxItems`, checked before any item;
- a 422 listed every validation error: 1,000 empty objects made a 700 KB answer; at most 20 now;
- `/invocations` built the whole frame before counting its rows: 6 MB of one-value CSV lines took over a
  minute and 600 MB (1.5 M empty JSON objects: 9 s); the rows are counted before any is converted.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from inference import payloads
from inference.errors import MAX_REPORTED_ERRORS
from inference.payloads import PayloadError, parse_payload
from tests.test_inference_app import auth, make_app, transaction
from tests.test_inference_app import platform as platform  # noqa: F401 - the module-scoped fixture


@pytest.fixture(scope="module")
def client(platform):  # noqa: ANN001, ANN201, F811
    with TestClient(make_app(platform, max_batch=50)) as c:
        yield c


def _batch(items: int, item: str = "{}") -> str:
    return '{"transactions": [' + ",".join([item] * items) + "]}"


def test_an_oversized_batch_is_refused_before_its_items_are_validated(client, platform) -> None:  # noqa: ANN001, F811
    headers = {**auth(platform.keys["all"]), "content-type": "application/json"}
    started = time.perf_counter()
    r = client.post("/v1/fraud/score:batch", headers=headers, content=_batch(100_000))
    elapsed = time.perf_counter() - started
    assert r.status_code == 422
    assert r.json()["detail"] == [
        {
            "loc": ["body", "transactions"],
            "msg": "List should have at most 50 items after validation, not 100000",
            "type": "too_long",
        }
    ]
    assert elapsed < 5.0  # one length check (it took tens of seconds item by item)


def test_the_batch_bound_is_the_configured_one_and_documented(client, platform) -> None:  # noqa: ANN001, F811
    headers = auth(platform.keys["all"])
    full = [transaction(platform, i) for i in range(50)]
    assert (
        client.post("/v1/fraud/score:batch", headers=headers, json={"transactions": full}).status_code == 200
    )
    over = {"transactions": [*full, transaction(platform, 50)]}
    assert client.post("/v1/fraud/score:batch", headers=headers, json=over).status_code == 422
    document = client.get("/openapi.json").json()
    batch = document["components"]["schemas"]["BatchScoreRequest"]["properties"]["transactions"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 50)


def test_a_small_invalid_body_gets_a_small_answer(client, platform) -> None:  # noqa: ANN001, F811
    headers = {**auth(platform.keys["all"]), "content-type": "application/json"}
    r = client.post("/v1/fraud/score:batch", headers=headers, content=_batch(50))  # 8 errors per item
    assert r.status_code == 422
    assert len(r.json()["detail"]) == MAX_REPORTED_ERRORS
    assert len(r.content) < 3_000
    assert r.json()["detail"][0]["loc"] == ["body", "transactions", 0, "txn_id"]  # the first ones, in order


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b'{"instances": [' + b",".join([b"{}"] * 100_000) + b"]}", "application/json"),
     (b"[" + b",".join([b"[1]"] * 100_000) + b"]", "application/json"),
     (b'{"columns": ["a"], "data": [' + b",".join([b"[1]"] * 100_000) + b"]}", "application/json"),
     (b"1\n" * 100_000, "text/csv"), (b"a\n" + b"1\n" * 100_000, "text/csv")],
    ids=["instances", "rows", "split", "csv", "csv with a header"],
)  # fmt: skip
def test_invocation_rows_are_counted_before_any_is_converted(monkeypatch, body, content_type) -> None:  # noqa: ANN001
    converted: list[str] = []
    monkeypatch.setattr(payloads, "_cell", lambda text: converted.append(text))
    monkeypatch.setattr(payloads.pd, "DataFrame", lambda *a, **k: converted.append("frame"))
    with pytest.raises(PayloadError, match="at most 10 rows per invocation"):
        parse_payload(body, content_type, ("a",), max_rows=10)
    assert converted == []


def test_invocation_rows_up_to_the_bound_still_score() -> None:
    frame = parse_payload(b"a\n" + b"1\n" * 10, "text/csv", ("a",), max_rows=10)
    assert isinstance(frame, pd.DataFrame) and frame.shape == (10, 1)
    assert parse_payload(b"[" + b",".join([b"[1]"] * 10) + b"]", "application/json", ("a",), 10).shape == (
        10,
        1,
    )


def test_six_megabytes_of_tiny_csv_rows_are_refused_at_once(client, platform) -> None:  # noqa: ANN001, F811
    headers = {**auth(platform.keys["all"]), "content-type": "text/csv"}
    started = time.perf_counter()
    r = client.post("/invocations", headers=headers, content=b"1\n" * (3 << 20))
    elapsed = time.perf_counter() - started
    assert (
        r.status_code == 400 and r.json()["detail"] == "at most 500 rows per invocation"
    )  # max_batch 50 x 10
    assert elapsed < 10.0  # over a minute when every line became a row first
