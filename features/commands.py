"""What the `cdp features ...` commands call."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

from cdp.backends import Backends
from cdp.settings import Settings, get_settings


def build(
    settings: Settings | None = None,
    *,
    view: str = "fraud_card",
    start: date | None = None,
    end: date | None = None,
) -> dict[str, Any]:
    """`cdp features build`: materialise the view's offline features for the whole lake, then write a
    time-split training set for [start, end) with its manifest. Returns a summary (no PII)."""
    from features.materialize import materialize_view
    from features.training import build_training_set

    backends = Backends(settings or get_settings())
    t0 = time.perf_counter()
    table = materialize_view(backends, view)
    t1 = time.perf_counter()
    manifest = build_training_set(backends, view, start, end)
    return {
        "features_table": table,
        "features_seconds": round(t1 - t0, 2),
        "training_set": {
            "set_id": manifest["set_id"],
            "rows": {k: v["rows"] for k, v in manifest["splits"].items()},
            "months": {k: v["months"] for k, v in manifest["splits"].items()},
            "skipped_unlabelled_months": manifest["skipped_unlabelled_months"],
            "manifest": manifest["splits"]["train"]["uri"].rsplit("split=", 1)[0] + "manifest.json",
        },
        "training_seconds": round(time.perf_counter() - t1, 2),
    }


def show_card(
    card_token: str, settings: Settings | None = None, *, view: str = "fraud_card"
) -> dict[str, Any]:
    """`cdp features show --card TOKEN`: the card's latest offline feature row (from the features table
    `cdp features build` wrote) and a summary of its online state. Tokens and aggregates only."""
    from cdp.catalog.port import CatalogError
    from cdp.online import online_store
    from features.materialize import features_table_name
    from features.online import OnlineFeatures
    from features.views import EVENT_VIEWS

    if not card_token.startswith("crd_") or not card_token.replace("_", "").replace("-", "").isalnum():
        raise ValueError("a card token looks like crd_<letters and digits>")
    backends = Backends(settings or get_settings())
    offline = None
    try:
        rows = backends.catalog.query(
            f"SELECT * FROM {features_table_name(view)} WHERE card_token = '{card_token}' "
            "ORDER BY ts DESC, txn_id DESC LIMIT 1"
        ).to_pylist()
        offline = rows[0] if rows else None
    except CatalogError:
        offline = None  # features not built yet
    online = OnlineFeatures(EVENT_VIEWS[view], online_store(backends.settings)).state_summary(card_token)
    return {"card_token": card_token, "view": view, "latest_offline_row": offline, "online_state": online}
