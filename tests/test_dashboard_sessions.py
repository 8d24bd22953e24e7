"""The dashboards' read sessions: a viewer's renders share one catalog connection, reused across reruns,
scoped to the tables of the viewer's pages; another viewer never gets it; new data shows on the next run."""

from __future__ import annotations

import pytest
import streamlit as st

from cdp.aggregates.refresh import refresh_aggregates
from cdp.backends import Backends
from cdp.catalog.port import CatalogError
from dashboards.queries import page_tables, viewer_tables
from monitoring.snapshots.customers import refresh_customers
from tests.dashboard_lake import build_lake
from tests.identity_support import issue
from tests.test_dashboard_app import profiles, signed_in


@pytest.fixture(autouse=True)
def fresh_cache():
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


def _transactions(b: Backends, where: str = "") -> str:
    n = b.catalog.query(f"SELECT count(*) AS n FROM transactions {where}").to_pylist()[0]["n"]
    return f"{n:,}"


def test_a_viewer_reuses_one_connection_scoped_to_their_pages_tables():
    b = Backends()
    build_lake(b, n=800, scored=200)
    refresh_aggregates(b)
    refresh_customers(b, profiles())
    analyst = signed_in(issue(b, "fraud-analyst-1", "fraud-ops"))
    session = analyst.session_state["data"].session
    first_run = session.queries_run
    assert session.connections_opened == 1 and first_run == 7  # the fraud page: 7 queries, 1 connection
    for channels in (["online"], ["chip", "swipe"], ["chip", "swipe", "online"]):
        analyst.multiselect(key="channels").set_value(channels).run()
        assert not analyst.exception
    assert analyst.session_state["data"].session is session  # reused across reruns
    assert session.connections_opened == 1 and session.queries_run > first_run
    assert session.requested == viewer_tables(("fraud",)) == page_tables()["fraud"]
    for other in ("dash_segments", "dash_model_versions", "transactions", "customers"):
        with pytest.raises(CatalogError):  # another page's table, or a raw one: not in this session
            session.query(f"SELECT count(*) AS n FROM {other}")

    marketer = signed_in(issue(b, "marketer-1", "marketing"))
    theirs = marketer.session_state["data"].session
    assert theirs is not session and theirs.requested == page_tables()["customers"]
    with pytest.raises(CatalogError):
        theirs.query("SELECT count(*) AS n FROM dash_fraud_daily")
    both = signed_in(issue(b, "lead-1", "fraud-ops", "marketing"))
    assert both.session_state["data"].session not in (session, theirs)  # one session per viewer
    assert both.session_state["data"].session.requested == viewer_tables(("fraud", "customers"))


def test_new_data_shows_on_the_next_run_through_the_same_session():
    b = Backends()
    build_lake(b, n=600, scored=0)
    refresh_aggregates(b)
    at = signed_in(issue(b, "fraud-analyst-1", "fraud-ops"))
    assert {m.label: m.value for m in at.metric}["Transactions"] == _transactions(b) == "600"
    session = at.session_state["data"].session
    build_lake(b, n=300, scored=0, seed=5)  # another landing, then the refresh the batch job runs
    refresh_aggregates(b)
    at.run()
    assert {m.label: m.value for m in at.metric}["Transactions"] == _transactions(b) == "900"
    assert at.session_state["data"].session is session and session.connections_opened == 2  # reopened once
