"""Dashboard bench: each page's queries on the aggregate tables vs the same figures from the raw lake.

`python -m bench dashboard [--users 2000] [--repeats 20] [--home PATH] [--full]`: over the lake the batch
job builds from the generated files of `--users` users (cached, as the features bench) or over an existing
home (`--home`, e.g. one a full-size demo left, with its scored stream and models), refresh the aggregates
(timed, wall and CPU; month by month where their watermarks allow, from the whole lake with `--full`),
then run every page's queries `--repeats` times (at least 5) as the app does (one read session of the
catalog per render), each on a connection of its own as before read sessions, and the figures that have a
raw equivalent again from the raw tables (fraud: `transactions`, `transactions_scored`; customers: the
customer total from `customer_features`; model health has none, the JSON says why). Reports p50/p95 per
query and per page (a page = all its queries, as one render runs them), its CPU, connections and queries
per render, the ratio raw / aggregate, and checks both give the same figures. Target: each page's p95
<= 1 s at 2,000 users. Results: bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.bench_features import full_lake
from bench.harness import print_table, write_result
from cdp.aggregates.definitions import AGGREGATES
from cdp.aggregates.refresh import refresh_aggregates
from cdp.backends import Backends
from cdp.settings import Settings
from dashboards.queries import FraudFilter, Query, customer_queries, fraud_queries, model_queries
from monitoring.snapshots.model_health import refresh_model_health

PAGE_TARGET_P95_S = 1.0
MIN_REPEATS = 5
# The customers page's total (the customers in its segments, none left out) from the raw lake: every
# customer with a `customer_features` row is profiled, so both count the same customers.
CUSTOMER_RAW_TWINS = {
    "customers_total": Query(
        "SELECT CAST(sum(customers) AS BIGINT) AS customers FROM dash_segments",
        ("dash_segments",),
        "SELECT CAST(count(DISTINCT user_token) AS BIGINT) AS customers FROM customer_features",
        ("customer_features",),
    )
}
MODEL_HEALTH_NO_RAW = (
    "none: its tables are snapshots of the model registry, the metrics store, the alarms, the pipeline "
    "run records and the drift reports, not of lake rows (the tests check them against those sources)"
)


def _cpu_seconds() -> float:
    """CPU seconds of this process and its threads so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(run: Callable[[str], pa.Table], sql: str) -> tuple[float, float, pd.DataFrame]:
    """Wall and CPU seconds of one query run by `run`, and its result."""
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    frame = run(sql).to_pandas()
    return time.perf_counter() - t0, _cpu_seconds() - cpu0, frame


def _same(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    if a.shape != b.shape:
        return False
    left = a.reset_index(drop=True).astype(str)
    right = b.reset_index(drop=True).astype(str)
    right.columns = left.columns
    return bool((left == right).all().all())


def _p(values: list[float] | np.ndarray, q: int) -> float | None:
    return float(np.percentile(values, q)) if len(values) else None


def _page(
    backends: Backends,
    name: str,
    queries: dict[str, Query],
    repeats: int,
    raw_twins: dict[str, Query] | None = None,
    no_raw: str | None = None,
) -> dict[str, Any]:
    """Time the page's queries `repeats` times, as the app runs them: every query of a render through one
    read session of the catalog (scoped to the page's tables), the session opened afresh for each render
    (the app keeps one across renders: its cost is a first render's). Beside it, the same queries each on a
    connection of its own (`Catalog.query`, what a render cost before read sessions), and the raw twins
    (the page's queries' `raw_sql`, or `raw_twins`) through a session over the raw tables."""
    tables = {t.name for t in backends.catalog.tables()}
    runnable = {k: q for k, q in queries.items() if set(q.needs) <= tables}
    candidates = {**runnable, **(raw_twins or {})}
    raw = {k: q for k, q in candidates.items() if q.raw_sql and set(q.needs) | set(q.raw_needs) <= tables}
    scope = {n for q in runnable.values() for n in q.needs} | {n for q in raw.values() for n in q.needs}
    raw_scope = {n for q in raw.values() for n in q.raw_needs}
    per_query: dict[str, dict[str, Any]] = {}
    page_agg, page_cpu = np.zeros(repeats), np.zeros(repeats)
    page_each, page_each_cpu, page_raw = np.zeros(repeats), np.zeros(repeats), np.zeros(repeats)
    connections = queries_run = 0
    for i in range(repeats):
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        with backends.catalog.read_session(scope) as session:
            for key, q in runnable.items():
                seconds, _, frame = _timed(session.query, q.sql)
                entry = per_query.setdefault(key, {"aggregate": [], "raw": [], "same_figures": None})
                entry["aggregate"].append(seconds)
                entry.setdefault("frame", frame)
        page_agg[i], page_cpu[i] = time.perf_counter() - t0, _cpu_seconds() - cpu0
        connections += getattr(session, "connections_opened", len(runnable))
        queries_run += getattr(session, "queries_run", len(runnable))
        for q in runnable.values():  # before read sessions: a connection (and its views) per query
            seconds, cpu, _ = _timed(backends.catalog.query, q.sql)
            page_each[i] += seconds
            page_each_cpu[i] += cpu
        if raw:
            with backends.catalog.read_session(raw_scope | scope) as session:
                for key, q in raw.items():
                    raw_seconds, _, raw_frame = _timed(session.query, q.raw_sql)
                    entry = per_query.setdefault(key, {"aggregate": [], "raw": [], "same_figures": None})
                    entry["raw"].append(raw_seconds)
                    page_raw[i] += raw_seconds  # the session opens with the first: its cost is in it
                    if key not in runnable:  # a raw twin of a figure the page computes from its rows
                        seconds, _, frame = _timed(session.query, q.sql)
                        entry["aggregate"].append(seconds)
                        entry.setdefault("frame", frame)
                    if entry["same_figures"] is None:
                        entry["same_figures"] = _same(entry["frame"], raw_frame)
    rows = {}
    for key, entry in per_query.items():
        agg_p95, raw_p95 = _p(entry["aggregate"], 95), _p(entry["raw"], 95)
        rows[key] = {
            "aggregate_p50_s": _p(entry["aggregate"], 50),
            "aggregate_p95_s": agg_p95,
            "raw_p95_s": raw_p95,
            "ratio_raw_to_aggregate": raw_p95 / agg_p95 if raw_p95 and agg_p95 else None,
            "same_figures": entry["same_figures"],
        }
    page_agg_p95 = _p(page_agg, 95) if runnable else None
    page_raw_p95 = _p(page_raw, 95) if raw else None
    return {
        "page": name,
        "queries": rows,
        "not_built": sorted(set(queries) - set(runnable)),
        "queries_per_render": queries_run / repeats,
        "connections_per_render": connections / repeats,
        "page_aggregate_p50_s": _p(page_agg, 50) if runnable else None,
        "page_aggregate_p95_s": page_agg_p95,
        # CPU seconds of this process (the engine runs in it): the wall figure on a loaded machine waits
        "page_aggregate_cpu_p95_s": _p(page_cpu, 95) if runnable else None,
        "page_connection_per_query_p95_s": _p(page_each, 95) if runnable else None,
        "page_connection_per_query_cpu_p95_s": _p(page_each_cpu, 95) if runnable else None,
        "page_raw_p95_s": page_raw_p95,
        "page_ratio_raw_to_aggregate": page_raw_p95 / page_agg_p95 if page_raw_p95 and page_agg_p95 else None,
        "raw_comparison": no_raw or "the raw twins: the same figures from the raw lake tables",
        "meets_target": page_agg_p95 is not None and page_agg_p95 <= PAGE_TARGET_P95_S,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench dashboard")
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument(
        "--repeats", type=int, default=20, help=f"at least {MIN_REPEATS} (a p95 of fewer is none)"
    )
    parser.add_argument("--home", type=Path, default=None, help="an existing home (its lake is not rebuilt)")
    parser.add_argument("--full", action="store_true", help="rebuild the aggregates from the whole lake")
    args = parser.parse_args(argv)
    if args.repeats < MIN_REPEATS:
        parser.error(f"--repeats: at least {MIN_REPEATS}")

    backends = Backends(Settings(home=args.home)) if args.home else full_lake(args.users)
    t0, cpu0 = time.perf_counter(), _cpu_seconds()
    report = refresh_aggregates(backends, full=args.full)
    refresh_seconds, refresh_cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    refresh_model_health(backends)
    source_rows = int(backends.catalog.query("SELECT count(*) AS n FROM transactions")["n"][0].as_py())
    table_rows = {
        a.name: int(backends.catalog.query(f"SELECT count(*) AS n FROM {a.name}")["n"][0].as_py())
        for a in AGGREGATES
        if a.name in {t.name for t in backends.catalog.tables()}
    }  # every lake aggregate's rows (`report.built` holds only the tables this refresh wrote)
    aggregate_rows = sum(table_rows.values())
    last = backends.catalog.query("SELECT max(ts) AS last FROM transactions")["last"][0].as_py().date()
    first = backends.catalog.query("SELECT min(ts) AS first FROM transactions")["first"][0].as_py().date()
    pages = [
        _page(backends, "fraud (all history)", fraud_queries(FraudFilter(first, last)), args.repeats),
        _page(
            backends,
            "fraud (last 12 months)",
            fraud_queries(FraudFilter(last - timedelta(days=365), last)),
            args.repeats,
        ),  # fmt: skip
        _page(
            backends,
            "customers",
            customer_queries(),
            args.repeats,
            CUSTOMER_RAW_TWINS,
            "customers shown: the latest customer_features rows counted; the per-segment and CLV figures "
            "come from the champions scoring those rows (model inference, no SQL equivalent)",
        ),
        _page(backends, "model health", model_queries(), args.repeats, no_raw=MODEL_HEALTH_NO_RAW),
    ]
    print_table(
        f"dashboard pages, {args.users} users ({source_rows:,} lake rows, {aggregate_rows:,} aggregate rows)",
        [
            {"page": p["page"], "aggregate p95 s": p["page_aggregate_p95_s"] or 0.0,
             "aggregate CPU p95 s": p["page_aggregate_cpu_p95_s"] or 0.0,
             "connections / render": p["connections_per_render"],
             "queries / render": p["queries_per_render"],
             "connection per query p95 s": p["page_connection_per_query_p95_s"] or 0.0,
             "raw p95 s": p["page_raw_p95_s"] or 0.0,
             "raw / aggregate": p["page_ratio_raw_to_aggregate"] or 0.0,
             "not built": ", ".join(p["not_built"]) or "-"}
            for p in pages
        ],
    )  # fmt: skip
    path = write_result(
        "dashboard",
        {
            "users": args.users,
            "repeats": args.repeats,
            "lake_rows": source_rows,
            "aggregate_rows": table_rows,
            "aggregate_refresh_built": report.built,
            "home": "existing" if args.home else "generated",
            "aggregate_refresh_seconds": refresh_seconds,
            "aggregate_refresh_cpu_seconds": refresh_cpu,
            "aggregate_refresh_modes": report.modes,
            "aggregate_refresh_failed": report.failed,
            "page_target_p95_s": PAGE_TARGET_P95_S,
            "date_range": [str(first), str(last)],
            "pages": pages,
            "when_run": str(date.today()),
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
