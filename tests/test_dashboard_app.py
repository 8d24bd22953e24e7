"""The dashboard app under Streamlit's AppTest: every page runs without an exception, its numbers match
SQL over the raw lake, each role sees only its page, an empty lake shows "no data yet"."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cdp.aggregates.refresh import refresh_aggregates
from cdp.backends import Backends
from cdp.compliance.leakscan import LeakScanner
from inference.profiles import Profile
from monitoring.snapshots.customers import refresh_customers
from monitoring.snapshots.model_health import refresh_model_health
from tests.dashboard_lake import build_lake
from tests.identity_support import issue

SCRIPT = str(Path(__file__).resolve().parent.parent / "dashboards" / "streamlit_app.py")
TOKENS = re.compile(r"\b(usr|crd)_[A-Za-z0-9]+")


@pytest.fixture(autouse=True)
def fresh_cache():
    st.cache_resource.clear()  # the app's Backends belong to one test's home
    yield
    st.cache_resource.clear()


def signed_in(token_file: Path) -> AppTest:
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    assert not at.exception
    at.text_input(key="secret").input(token_file.read_text().strip())
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


def shown_text(at: AppTest) -> str:
    """Everything the page put on screen as text: markdown, metrics, captions, notices and tables."""
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    parts += [f"{m.label} {m.value}" for m in at.metric] + [e.value for e in at.error]
    parts += [e.value.to_csv() for e in at.dataframe]
    return "\n".join(str(p) for p in parts)


def profiles(n: int = 60) -> list[Profile]:
    names = ("savers", "travellers", "families")
    return [
        Profile(f"usr_{i:026d}", datetime(2019, 3, 1), i % 3, names[i % 3], 1_000_00 * (i % 40), {})
        for i in range(n)
    ]


def test_fraud_page_numbers_match_sql_over_the_raw_lake_and_the_page_is_clean():
    b = Backends()
    build_lake(b)
    refresh_aggregates(b)
    at = signed_in(issue(b, "fraud-analyst-1", "fraud-ops"))
    assert at.radio(key="page").options == ["Fraud operations"]  # fraud-ops sees the fraud page only
    raw = b.catalog.query(
        "SELECT count(*) AS n, sum(CASE WHEN is_fraud THEN 1 ELSE 0 END) AS f, "
        "sum(CASE WHEN is_fraud THEN amount_cents ELSE 0 END) AS loss FROM transactions"
    ).to_pylist()[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Transactions"] == f"{raw['n']:,}"
    assert metrics["Frauds"] == f"{raw['f']:,}"
    assert metrics["Losses (net fraud amount)"] == f"${raw['loss'] / 100:,.0f}"
    scored = b.catalog.query(
        "SELECT CAST(model_version AS INTEGER) AS v, sum(CASE WHEN is_alert THEN 1 ELSE 0 END) AS alerts "
        "FROM transactions_scored GROUP BY 1 ORDER BY 1"
    ).to_pylist()
    per_version = at.dataframe[0].value.set_index("model version")
    assert [int(per_version.loc[f"v{r['v']}", "alerts"]) for r in scored] == [r["alerts"] for r in scored]
    assert len(at.get("vega_lite_chart")) >= 6  # weekly, channel, MCC, state, hour, alerts, reasons
    text = shown_text(at)
    assert not TOKENS.search(text) and not list(LeakScanner().scan_text(text, "fraud page", "text"))

    at.multiselect(key="channels").set_value(["online"]).run()  # a filter changes the figures
    online = b.catalog.query("SELECT count(*) AS n FROM transactions WHERE channel = 'online'").to_pylist()[0]
    assert {m.label: m.value for m in at.metric}["Transactions"] == f"{online['n']:,}"
    assert not at.exception


def test_an_empty_lake_shows_no_data_yet_pages_not_tracebacks():
    b = Backends()
    token = issue(b, "everyone-1", "fraud-ops", "marketing", "ml-engineer")
    at = signed_in(token)
    assert at.radio(key="page").options == ["Fraud operations", "Customers", "Model health"]
    for page in ("Fraud operations", "Customers", "Model health"):
        at.radio(key="page").set_value(page).run()
        assert not at.exception, page
        assert any("No data yet" in i.value for i in at.info), page
        assert not at.error, page


def test_customers_page_shows_segments_and_hides_small_cells():
    b = Backends()
    refresh_customers(b, profiles())
    at = signed_in(issue(b, "marketer-1", "marketing"))
    assert at.radio(key="page").options == ["Customers"]
    assert {m.label: m.value for m in at.metric}["Customers in the segments shown"] == "60"
    matrix = at.dataframe[-1].value
    cells = [v for v in matrix.to_numpy().ravel().tolist() if v not in ("0",)]
    assert all(v == "<5" or int(v.replace(",", "")) >= 5 for v in cells)  # no cell of 1-4 customers
    text = shown_text(at)
    assert not TOKENS.search(text)
    at.multiselect(key="segments").set_value(["savers"]).run()
    assert {m.label: m.value for m in at.metric}["Customers in the segments shown"] == "20"


def test_model_health_page_for_a_data_scientist_and_no_other_page():
    b = Backends()
    build_lake(b, n=300, scored=0)
    refresh_aggregates(b)
    refresh_model_health(b)
    at = signed_in(issue(b, "data-scientist-1", "data-scientist"))
    assert at.radio(key="page").options == ["Model health"]
    assert any("No data yet: no model version registered" in i.value for i in at.info)
    assert not at.exception and not at.error


def test_a_bad_secret_or_a_role_without_a_page_is_refused_in_one_line():
    b = Backends()
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.text_input(key="secret").input("cdp1.not.valid")
    at.button[0].click().run()
    assert at.error and "Not signed in" in at.error[0].value and "cdp1" not in at.error[0].value
    at2 = signed_in_refused(issue(b, "officer-1", "privacy-officer"))
    assert "may open no dashboard page" in at2.error[0].value


def signed_in_refused(token_file: Path) -> AppTest:
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.text_input(key="secret").input(token_file.read_text().strip())
    at.button[0].click().run()
    assert not at.exception and at.error
    return at


def test_an_api_key_with_a_dashboard_scope_opens_its_page():
    from cdp.apikeys.commands import create_key

    b = Backends()
    build_lake(b, n=300, scored=0)
    refresh_aggregates(b)
    key = create_key(b.api_keys, "ops-screen", ["dashboard:fraud"])[0]
    at = AppTest.from_file(SCRIPT, default_timeout=60).run()
    at.text_input(key="secret").input(key)
    at.button[0].click().run()
    assert not at.exception
    assert at.radio(key="page").options == ["Fraud operations"]


def test_customers_page_figures_match_sql_over_its_tables():
    import pandas as pd

    from cdp.aggregates.snapshots import write_snapshot
    from monitoring.snapshots.customers import customer_tables

    b = Backends()
    people = profiles(60) + [  # a segment of 3 customers: left out of every figure
        Profile(f"usr_{i:026d}", datetime(2019, 3, 1), 3, "vip", 90_000_00, {}) for i in range(60, 63)
    ]
    features = pd.DataFrame(
        {"user_token": [p.user_token for p in people], "txn_count_90d": [float(i % 7) for i in range(63)]}
    )
    for name, rows in customer_tables(people, b.settings.dashboard_min_customers, features).items():
        write_snapshot(b, name, rows)
    at = signed_in(issue(b, "marketer-1", "marketing"))
    assert not at.exception and not at.error

    def sql_figures(where: str = "") -> dict:
        return b.catalog.query(
            "SELECT CAST(sum(customers) AS BIGINT) AS customers, count(*) AS segments, "
            f"sum(clv_mean_cents * customers) / sum(customers) AS mean_cents FROM dash_segments {where}"
        ).to_pylist()[0]

    for where, chosen in (("", None), ("WHERE segment_name = 'savers'", ["savers"])):
        if chosen:
            at.multiselect(key="segments").set_value(chosen).run()
        metrics, sql = {m.label: m.value for m in at.metric}, sql_figures(where)
        assert metrics["Customers in the segments shown"] == f"{sql['customers']:,}"
        assert metrics["Segments"] == f"{sql['segments']:,}"
        assert metrics["Mean 12-month CLV"] == f"${sql['mean_cents'] / 100:,.0f}"
    assert sql_figures()["customers"] == 60 and "vip" not in at.multiselect(key="segments").options

    at.multiselect(key="segments").set_value(["savers", "travellers", "families"]).run()
    means = at.dataframe[0].value  # segment profiles: feature x segment
    for row in b.catalog.query("SELECT segment_name, feature, mean FROM dash_segment_profiles").to_pylist():
        assert means.loc[row["feature"], row["segment_name"]] == pytest.approx(round(row["mean"], 2))
    matrix = at.dataframe[-1].value  # segment x CLV band
    cells = b.catalog.query(
        "SELECT segment_name, band, customers, suppressed FROM dash_segment_clv"
    ).to_pylist()
    assert cells
    for cell in cells:
        if cell["segment_name"] == "vip":
            continue  # not a segment shown
        shown = matrix.loc[cell["segment_name"], cell["band"]]
        assert shown == ("<5" if cell["suppressed"] else f"{cell['customers']:,}")
    assert len(at.get("vega_lite_chart")) >= 4  # customers, mean CLV, histogram, bands (+ matrix)
