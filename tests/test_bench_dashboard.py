"""The dashboard bench over an existing home: refreshes the aggregates (month by month on a second run),
times every page and finds the same figures from the aggregates as from the raw lake."""

from __future__ import annotations

from pathlib import Path

from bench import bench_dashboard
from cdp.backends import Backends
from tests.dashboard_lake import build_lake


def test_the_dashboard_bench_runs_over_an_existing_home(monkeypatch):
    b = Backends()
    build_lake(b, n=600, scored=200)
    results: list[dict] = []
    monkeypatch.setattr(
        bench_dashboard, "write_result", lambda name, result: results.append(result) or Path(name)
    )
    bench_dashboard.main(["--home", str(b.settings.home), "--repeats", "5"])
    bench_dashboard.main(["--home", str(b.settings.home), "--repeats", "5"])
    first, second = results
    assert first["home"] == "existing" and first["lake_rows"] == 600
    assert (
        first["aggregate_rows"]["dash_fraud_daily"] > 0
        and second["aggregate_rows"] == first["aggregate_rows"]
    )
    assert set(first["aggregate_refresh_modes"].values()) == {"full"}
    assert set(second["aggregate_refresh_modes"].values()) == {"unchanged"}
    fraud = first["pages"][0]
    compared = [q for q in fraud["queries"].values() if q["raw_p95_s"] is not None]
    assert compared and all(q["same_figures"] for q in compared)
    assert fraud["page_aggregate_p95_s"] > 0 and fraud["page_aggregate_cpu_p95_s"] > 0
    assert fraud["connections_per_render"] == 1 and fraud["queries_per_render"] == len(fraud["queries"])
    assert fraud["page_connection_per_query_p95_s"] > 0  # the cost before read sessions, beside it
    pages = {p["page"]: p for p in first["pages"]}
    assert pages["model health"]["raw_comparison"].startswith("none: ")
    assert "customer_features" in pages["customers"]["raw_comparison"]


def test_the_dashboard_bench_wants_five_repeats_at_least():
    import pytest

    with pytest.raises(SystemExit):
        bench_dashboard.main(["--home", "unused", "--repeats", "4"])
