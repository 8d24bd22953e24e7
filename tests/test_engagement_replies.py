""" "Was this you?": a notice's reply code, answered through the API (scope `notices:reply`), labels the
notice's transactions in the lake with the time the answer became known; the first answer wins."""

from __future__ import annotations

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from cdp.apikeys.commands import create_key
from cdp.backends import Backends
from cdp.feedback.replies import FRAUD_FEEDBACK, ReplyBook
from inference.app import create_app
from inference.config import ServingConfig
from tests.notify_support import build_world


def _feedback_rows(b: Backends) -> list[dict]:
    folder = b.object_store.local_path(FRAUD_FEEDBACK.location(b.settings.lake_bucket))
    return [r for f in sorted(folder.rglob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_the_notifier_issues_codes_covering_every_alert_of_the_episode():
    world = build_world(1)
    notifier = world.notifier()
    notifier.replies = ReplyBook.from_settings(world.b.settings, world.b.object_store)
    notifier.run([world.alert(0, 0), world.alert(0, 10)])
    notifier.run([world.alert(0, 30)])  # joins the notified episode
    code = notifier.ledger.con.execute("SELECT reply_code FROM notices").fetchone()[0]
    result = notifier.replies.answer(code, "not-me")
    assert (result.status, result.transactions) == ("recorded", 3)
    rows = _feedback_rows(world.b)
    assert sorted(r["txn_id"] for r in rows) == sorted(
        a.txn_id for a in [world.alert(0, m) for m in (0, 10, 30)]
    )
    assert all(r["is_fraud"] is True and r["source"] == "customer-reply" and r["known_at"] for r in rows)
    assert notifier.replies.answer(code, "me").status == "already-answered"
    assert {r["is_fraud"] for r in _feedback_rows(world.b)} == {True}  # the first answer stands


def test_the_reply_route_needs_its_scope_and_never_echoes_an_unknown_code():
    b = Backends()
    book = ReplyBook.from_settings(b.settings, b.object_store)
    book.issue("KXQM-TRPD", "ntc-000000000000000000000001", ["abc-1", "abc-2"])
    reply_key = create_key(b.api_keys, "app", ["notices:reply"])[0]
    other_key = create_key(b.api_keys, "scorer", ["fraud:score"])[0]
    app = create_app(backends=b, config=ServingConfig(reload_seconds=0.0), key_store=b.api_keys)
    with TestClient(app) as client:

        def post(key: str, body: dict):  # noqa: ANN202
            return client.post("/v1/notices/reply", json=body, headers={"Authorization": f"Bearer {key}"})

        assert post(other_key, {"reply_code": "KXQM-TRPD", "answer": "me"}).status_code == 403
        ok = post(reply_key, {"reply_code": "KXQM-TRPD", "answer": "me"})
        assert ok.status_code == 200 and ok.json() == {"status": "recorded", "transactions": 2}
        assert (
            post(reply_key, {"reply_code": "KXQM-TRPD", "answer": "not-me"}).json()["status"]
            == "already-answered"
        )
        unknown = post(reply_key, {"reply_code": "ABCD-EFGH", "answer": "me"})
        assert unknown.status_code == 404 and "ABCD-EFGH" not in unknown.text
        assert post(reply_key, {"reply_code": "1234-5678", "answer": "me"}).status_code == 422
    assert [r["is_fraud"] for r in _feedback_rows(b)] == [False, False]
