"""Feature build benchmarks.

- Offline, full size: the fraud view's point-in-time SQL (DuckDB, 2 threads, 6 GB memory limit)
  materialised as partitioned Parquet over the lake the batch job builds from the generated IBM files of
  `CDP_BENCH_USERS` users (default 2,000: ~24.4M source rows, of which the lake holds the ~95% batch
  history). The catalog computes it bucket by bucket of cards (`hash(card_token) % k`, k from the
  row count); `--offline-only` measures this part alone and keeps the other sections of the last
  result. The source files and the lake are cached under `bench/.cache/` (git-ignored), so only the
  first run pays for generation and the batch job. Wall and CPU seconds are both recorded, with the load
  average, because the machine may be shared.
- Baseline: a straightforward pandas groupby-rolling of the 16 window features (count/sum/mean/max over
  1h/24h/7d/30d per card) on a `BASELINE_ROWS` slice, beside DuckDB building the whole view on the same
  slice (the ratio understates DuckDB's lead: pandas computes a third of the features).
- Online: events/s of the fraud view's per-event update on one core. Target >= 50k events/s.
- Customer tables: `customer_features` + `clv_training_set` + `segmentation_training_set` (two cut-offs)
  over a generated lake of `OFFLINE_ROWS` rows.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from bench.bench_batch import CACHE, source_data
from bench.harness import RESULTS_DIR, measure, print_table, write_result
from cdp.backends import Backends
from cdp.online.local import LocalOnlineStore
from cdp.settings import Settings
from features.customer_tables import build_customer_tables
from features.fraud import FRAUD_VIEW
from features.materialize import materialize_view
from features.online import CardProfile, OnlineFeatures
from features.sample import sample_cards, sample_transactions, write_sample_lake

FULL_ROWS = 24_386_900  # the real IBM file
ROWS_PER_CARD = 4_000
OFFLINE_ROWS = 1_500_000
BASELINE_ROWS = 1_000_000
ONLINE_EVENTS = 300_000
OFFLINE_TARGET_S, MEMORY_TARGET_GB, ONLINE_TARGET = 300, 8, 50_000


def _lake(home: Path, rows: int) -> Backends:
    backends = Backends(Settings(home=home))
    cards = max(1, rows // ROWS_PER_CARD)
    write_sample_lake(
        backends, sample_transactions(rows, cards, seed=1, days=365 * 8), sample_cards(cards, 1)
    )
    return backends


def full_lake(users: int) -> Backends:
    """The lake the batch job builds from the generated IBM files of `users` users (cached)."""
    from cdp.batch.job import run_batch

    home = CACHE / f"lake-{users}"
    done = home / "batch-complete"
    backends = Backends(Settings(home=home, workers=2))
    if not done.exists():
        run_batch(source_data(users), backends)
        done.write_text("ok\n")
    return backends


def timed_build(backends: Backends) -> dict[str, Any]:
    """Materialise the fraud view; wall and CPU seconds (all threads) and the load average around it."""
    source_rows = int(backends.catalog.query("SELECT count(*) AS n FROM transactions")["n"][0].as_py())
    load_before = os.getloadavg()[0]
    cpu0, wall0 = time.process_time(), time.perf_counter()
    built = materialize_view(backends, "fraud_card", full=True)
    return {
        "rows": built["rows"],
        "buckets": backends.catalog.bucket_count(source_rows),
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "load_average_1min_before": load_before,
        "load_average_1min_after": os.getloadavg()[0],
    }


def pandas_rolling(rows: int) -> dict[str, Any]:
    """The baseline: pandas time-based rolling windows per card, prior events only (closed='left')."""
    tx = sample_transactions(rows, max(1, rows // ROWS_PER_CARD), seed=1, days=365 * 8)
    df = tx.select(["card_token", "ts", "event_seq", "amount_cents"]).to_pandas()
    df = df.sort_values(["card_token", "ts", "event_seq"]).set_index("ts")
    out = {}
    grouped = df.groupby("card_token")["amount_cents"]
    for name, span in (("1h", "3600s"), ("24h", "86400s"), ("7d", "604800s"), ("30d", "2592000s")):
        roll = grouped.rolling(span, closed="left")
        out[f"txn_count_{name}"] = roll.count()
        out[f"amount_sum_{name}"] = roll.sum()
        out[f"amount_mean_{name}"] = roll.mean()
        out[f"amount_max_{name}"] = roll.max()
    return {"rows": len(pd.DataFrame(out)), "features": len(out)}


def online_rate(events: int) -> dict[str, Any]:
    cards = max(1, events // 150)
    tx = sample_transactions(events, cards, seed=4, days=365)
    rows = sorted(tx.to_pylist(), key=lambda r: (r["ts"], r["event_seq"], r["txn_id"]))
    profiles = {r["card_token"]: CardProfile.from_row(r) for r in sample_cards(cards, 4).to_pylist()}
    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(), profiles)
    online.prepare({r["card_token"] for r in rows})
    update = online.update
    t0 = time.perf_counter()
    for r in rows:
        update(r)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    flushed = online.flush()
    return {
        "events": events,
        "update_seconds": seconds,
        "events_per_s": events / seconds,
        "flush_states": flushed,
        "flush_seconds": time.perf_counter() - t1,
    }


def offline_result(offline: Any, users: int) -> dict[str, Any]:
    """The `offline` section of the result file from the full-size measurement."""
    from cdp.catalog.local import ROWS_PER_BUCKET

    rows = offline.extra["rows"]
    peak_gb = offline.peak_memory_bytes / 2**30
    return {
        "users": users,
        "measured_rows": rows,
        "measured_seconds": round(offline.seconds, 2),
        "measured_cpu_seconds": round(offline.extra["cpu_seconds"], 1),
        "measured_peak_memory_gb": round(peak_gb, 2),
        "load_average_1min": [
            round(offline.extra["load_average_1min_before"], 2),
            round(offline.extra["load_average_1min_after"], 2),
        ],
        "features": len(FRAUD_VIEW.features),
        "machine_note": "2 cores shared with other work: compare cpu_seconds and the load average",
        "threads": 2,
        "memory_limit": "6GB",
        "buckets": offline.extra["buckets"],
        "method": "the view's committed SQL run once per bucket of cards (hash(card_token) % buckets, "
        f"buckets = ceil(source rows / {ROWS_PER_BUCKET:,})), each bucket appending its own files to one "
        "staging folder that replaces the table at the end",
        "targets": {"seconds": OFFLINE_TARGET_S, "peak_memory_gb": MEMORY_TARGET_GB},
        "meets_time_target": offline.seconds <= OFFLINE_TARGET_S,
        "meets_memory_target": peak_gb <= MEMORY_TARGET_GB,
        "at_source_size": {
            "rows": FULL_ROWS,
            "seconds": round(offline.seconds * FULL_ROWS / rows, 1),
            "method": "the measured lake run scaled linearly to every source row (the lake holds the "
            "batch ~95%; the rest is the stream)",
        },
    }


def main(argv: list[str] | None = None) -> None:
    """Every feature benchmark; with `--offline-only`, the full-size offline build alone."""
    users = int(os.environ.get("CDP_BENCH_USERS", 2000))
    lake = full_lake(users)
    offline = measure(f"duckdb fraud view, full lake ({users:,} users)", lambda: timed_build(lake))
    if "--offline-only" in (argv or []):
        previous = RESULTS_DIR / "features.json"
        kept = json.loads(previous.read_text()) if previous.exists() else {}
        kept = {k: v for k, v in kept.items() if k not in ("benchmark", "when", "machine", "offline")}
        write_result("features", {"offline": offline_result(offline, users), **kept})
        built = offline.extra["rows"]
        print(f"offline: {built:,} rows in {offline.seconds:,.1f} s (target {OFFLINE_TARGET_S} s)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        big = _lake(Path(tmp) / "big", OFFLINE_ROWS)
        customer = measure(
            f"customer tables, {OFFLINE_ROWS:,} rows", lambda: build_customer_tables(big, date(2024, 1, 1))
        )
        small = _lake(Path(tmp) / "small", BASELINE_ROWS)
        duck_small = measure(
            f"duckdb fraud view, {BASELINE_ROWS:,} rows",
            lambda: materialize_view(small, "fraud_card", full=True),
        )
    baseline = measure(
        f"pandas groupby-rolling (16 window features), {BASELINE_ROWS:,} rows",
        lambda: pandas_rolling(BASELINE_ROWS),
    )
    online = measure(f"online update, {ONLINE_EVENTS:,} events", lambda: online_rate(ONLINE_EVENTS))

    rows = offline.extra["rows"]
    result = {
        "offline": offline_result(offline, users),
        "customer_tables": {
            "rows": OFFLINE_ROWS,
            "seconds": round(customer.seconds, 2),
            "peak_memory_gb": round(customer.peak_memory_bytes / 2**30, 2),
        },
        "baseline_1m": {
            "rows": BASELINE_ROWS,
            "duckdb_full_view_seconds": round(duck_small.seconds, 2),
            "pandas_window_features_only_seconds": round(baseline.seconds, 2),
            "pandas_over_duckdb_ratio": round(baseline.seconds / duck_small.seconds, 2),
            "duckdb_peak_memory_gb": round(duck_small.peak_memory_bytes / 2**30, 2),
            "pandas_peak_memory_gb": round(baseline.peak_memory_bytes / 2**30, 2),
        },
        "online": {k: round(v, 3) if isinstance(v, float) else v for k, v in online.extra.items()}
        | {
            "target_events_per_s": ONLINE_TARGET,
            "meets_target": online.extra["events_per_s"] >= ONLINE_TARGET,
        },
    }
    write_result("features", result)
    print_table(
        "features",
        [
            {"run": m.label, "seconds": m.seconds, "peak_gb": m.peak_memory_bytes / 2**30}
            for m in (offline, customer, duck_small, baseline, online)
        ],
    )
    print(f"offline: {rows:,} rows in {offline.seconds:,.1f} s (target {OFFLINE_TARGET_S} s)")
    print(f"online: {online.extra['events_per_s']:,.0f} events/s (target {ONLINE_TARGET:,})")


if __name__ == "__main__":
    main()
