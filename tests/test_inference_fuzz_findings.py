"""Findings of fuzzing the public API that no other test held: each test fails on the code before its fix.

- a batch of 100,000 empty objects (300 KB, under the 2 MB body limit) was validated item by item before
  the batch size was checked: 800,000 field errors, tens of seconds of CPU, a megabyte answer per few
  kilobytes asked; the bound is now the request model's `maxItems`, checked before any item;
- a 422 listed every validation error: 1,000 empty objects made a 700 KB answer; at most 20 now.
"""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from inference.errors import MAX_REPORTED_ERRORS
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
