"""The Streamlit app: sign in, pick a page the viewer may open, set the filters, render the page.

Run by `cdp dashboard` (`streamlit run dashboards/streamlit_app.py`). Every figure comes from the
aggregate tables through the catalog port; nothing here decrypts or reads a customer's row. A signed-in
viewer's queries go through one read session of the catalog, kept across reruns and scoped to the tables
of the viewer's pages; sessions are cached per viewer (never shared between two of them).
"""

from __future__ import annotations

from datetime import date, timedelta

import streamlit as st

from cdp.backends import Backends
from cdp.catalog.port import ReadSession
from cdp.settings import get_settings
from dashboards.access import PAGE_TITLES, SignInRefused, Viewer, sign_in
from dashboards.data import DashboardData, DataUnavailable
from dashboards.queries import (
    CHANNELS,
    FRESHNESS,
    FraudFilter,
    customer_queries,
    fraud_queries,
    model_queries,
    viewer_tables,
)

VIEWER_KEY = "viewer"
DATA_KEY = "data"
DEFAULT_DAYS = 365
SESSION_TTL_SECONDS = 3600  # a viewer's read session is closed after an hour (reopened on the next run)
MAX_SESSIONS = 64


@st.cache_resource
def _backends() -> Backends:
    return Backends(get_settings())


def _close(session: ReadSession) -> None:
    session.close()


@st.cache_resource(ttl=SESSION_TTL_SECONDS, max_entries=MAX_SESSIONS, on_release=_close, show_spinner=False)
def read_session(viewer: Viewer) -> ReadSession:
    """The viewer's read session over the tables of their pages only. Cached by the whole `Viewer` (name,
    kind and pages): reruns and the viewer's other tabs reuse it, another viewer gets their own."""
    return _backends().catalog.read_session(viewer_tables(viewer.pages))


def _data(viewer: Viewer) -> DashboardData:
    data = st.session_state.get(DATA_KEY)
    session = read_session(viewer)
    if data is None or data.session is not session:
        data = st.session_state[DATA_KEY] = DashboardData(session)
    data.start_run()
    return data


def _sign_in_form() -> None:
    st.title("CDP dashboards")
    with st.form("sign_in"):
        secret = st.text_input("Identity token or API key", type="password", key="secret")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            st.session_state[VIEWER_KEY] = sign_in(_backends(), secret)
        except SignInRefused as e:
            st.error(f"Not signed in: {e}")
            return
        st.session_state.pop("secret", None)  # the secret is not kept in the session
        st.rerun()


def _date_range(data: DashboardData) -> tuple[date, date]:
    last = date.today()
    freshness = fraud_queries(FraudFilter(last, last))[FRESHNESS]  # the page shows it too: one query
    fresh = data.frame(freshness.sql, freshness.needs)
    if fresh is not None and fresh["last_event"].notna().any():
        last = fresh["last_event"].max().date()
    picked = st.sidebar.date_input("Dates", value=(last - timedelta(days=DEFAULT_DAYS), last), key="dates")
    if isinstance(picked, tuple) and len(picked) == 2:
        return picked[0], picked[1]
    start = picked[0] if isinstance(picked, tuple) else picked
    return start, start


def _fraud_page(data: DashboardData) -> None:
    from dashboards.views import fraud

    start, end = _date_range(data)
    channels = st.sidebar.multiselect("Channels", CHANNELS, default=list(CHANNELS), key="channels")
    fraud.render(data, FraudFilter(start, end, tuple(channels)))


def _customers_page(data: DashboardData) -> None:
    from dashboards.views import customers

    names: list[str] = []
    every = customer_queries()["segments"]  # the page's own query when no segment is left out
    seg = data.frame(every.sql, every.needs)
    if seg is not None:
        names = sorted(seg["segment_name"].tolist())
    chosen = st.sidebar.multiselect("Segments", names, default=names, key="segments")
    customers.render(data, tuple(chosen) if chosen != names else None, get_settings().dashboard_min_customers)


def _models_page(data: DashboardData) -> None:
    from dashboards.views import models

    names = ["all"]
    listed = model_queries()["versions"]  # the page's own query
    versions = data.frame(listed.sql, listed.needs)
    if versions is not None:
        names += sorted(set(versions["model_name"]))
    chosen = st.sidebar.selectbox("Model", names, key="model")
    models.render(data, None if chosen == "all" else chosen)


RENDER = {"fraud": _fraud_page, "customers": _customers_page, "models": _models_page}


def main() -> None:
    """One run of the script (Streamlit re-runs it on every interaction)."""
    st.set_page_config(page_title="CDP dashboards", layout="wide")
    viewer: Viewer | None = st.session_state.get(VIEWER_KEY)
    if viewer is None:
        _sign_in_form()
        return
    st.sidebar.write(f"Signed in: **{viewer.name}**")
    if st.sidebar.button("Sign out", key="sign_out"):
        st.session_state.clear()
        st.rerun()
    page = st.sidebar.radio("Page", viewer.pages, format_func=lambda p: PAGE_TITLES[p], key="page")
    if page not in viewer.pages:  # never render a page the viewer was not given
        st.error("This page is not available to you.")
        return
    st.title(PAGE_TITLES[page])
    try:
        RENDER[page](_data(viewer))
    except DataUnavailable as e:
        st.error(f"The dashboard tables cannot be read right now: {e}")
