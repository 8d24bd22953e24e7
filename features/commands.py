"""What the `cdp features ...` commands call."""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from cdp.backends import Backends
from cdp.settings import Settings, get_settings


def build(
    settings: Settings | None = None,
    *,
    view: str = "fraud_card",
    start: date | None = None,
    end: date | None = None,
    cutoff: date | None = None,
    full: bool = False,
) -> dict[str, Any]:
    """`cdp features build`: materialise the fraud view's features for the whole lake (only the months
    changed since the last build when its manifest allows, everything with `full`), write its time-split
    training set for [start, end) (table `fraud_training_set`), then the customer tables as of the CLV
    cut-off (`customer_features`, `clv_training_set`, `segmentation_training_set`). Returns a summary of
    counts, dates and table locations (no PII)."""
    from features.customer_tables import build_customer_tables
    from features.materialize import materialize_view
    from features.training import build_training_set

    backends = Backends(settings or get_settings())
    t0 = time.perf_counter()
    table = materialize_view(backends, view, full=full)
    t1 = time.perf_counter()
    manifest = build_training_set(backends, view, start, end)
    t2 = time.perf_counter()
    customers = build_customer_tables(backends, cutoff)
    return {
        "features_table": table,
        "features_seconds": round(t1 - t0, 2),
        "training_set": {
            "table": manifest["table"],
            "set_id": manifest["set_id"],
            "rows": {k: v["rows"] for k, v in manifest["splits"].items()},
            "months": {k: v["months"] for k, v in manifest["splits"].items()},
            "skipped_unlabelled_months": manifest["skipped_unlabelled_months"],
            "manifest": manifest["manifest_uri"],
        },
        "training_seconds": round(t2 - t1, 2),
        "customer_tables": customers,
        "customer_seconds": round(time.perf_counter() - t2, 2),
    }


def _check_token(token: str, prefix: str) -> None:
    if not token.startswith(prefix) or not token.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a token looks like {prefix}<letters and digits>")


def show_card(
    card_token: str, settings: Settings | None = None, *, view: str = "fraud_card"
) -> dict[str, Any]:
    """`cdp features show --card TOKEN`: the card's latest offline feature row (from the features table
    `cdp features build` wrote) and a summary of its online state. Tokens and aggregates only."""
    from cdp.catalog.port import CatalogError
    from features.materialize import features_table_name
    from features.online import OnlineFeatures
    from features.views import EVENT_VIEWS

    _check_token(card_token, "crd_")
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
    online = OnlineFeatures(EVENT_VIEWS[view], backends.online_store).state_summary(card_token)
    return {"card_token": card_token, "view": view, "latest_offline_row": offline, "online_state": online}


def show_customer(
    user_token: str, settings: Settings | None = None, *, as_of: datetime | None = None
) -> dict[str, Any]:
    """`cdp features show --customer TOKEN`: the user's rows of `customer_features` (one per cut-off
    built) and, when the online store holds the user's state, the online features as of `as_of`
    (default: now). Tokens, aggregates and coarse profile attributes only."""
    from cdp.catalog.port import CatalogError
    from features.asof_online import OnlineAsOfFeatures, load_customer_profiles
    from features.customer import CUSTOMER_VIEW
    from features.customer_tables import CUSTOMER_FEATURES

    _check_token(user_token, "usr_")
    backends = Backends(settings or get_settings())
    try:
        offline = backends.catalog.query(
            f"SELECT * FROM {CUSTOMER_FEATURES} WHERE user_token = '{user_token}' ORDER BY as_of"
        ).to_pylist()
    except CatalogError:
        offline = []  # features not built yet
    try:
        profiles = load_customer_profiles(backends.catalog)
    except CatalogError:
        profiles = {}
    state = OnlineAsOfFeatures(CUSTOMER_VIEW, backends.online_store, profiles)
    online = None
    try:
        online = state.features_as_of(user_token, as_of or datetime.now())
    except ValueError:
        online = None  # the state holds events after `as_of`
    return {"user_token": user_token, "view": CUSTOMER_VIEW.name, "offline_rows": offline, "online": online}
