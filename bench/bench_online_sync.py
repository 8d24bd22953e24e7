"""Rebuilding the online state from the lake (`cdp features sync-online`): seeded vs full replay.

Run: `python -m bench online_sync [--users 100]`. Prints one table, writes `bench/results/online_sync.json`.

Setup (not timed): the lake the batch job builds from the generated IBM files of `--users` users (cached
under `bench/.cache/`, shared with the features benchmark).

Timed, each in a fresh process (so peak memory is its own), over every lake row (the demo syncs at the
stream split, after the batch history): `sync_online_state` in the default "seeded" mode (engine
aggregates of each card's events before its longest window, only the window replayed) and in "replay"
mode (every event through the per-event updater: the path it replaces). Events/s are lake events brought
into the state per wall second; CPU seconds count every thread (DuckDB's too); the load average is
recorded because the machine may be shared. Both stores are hashed: the figures only count if the states
are byte for byte equal. Target: >= 10x the replay's events/s.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.harness import measure, print_table, write_result

DEFAULT_USERS = 100
TARGET_SPEEDUP = 10


def timed_sync(users: int, mode: str) -> dict[str, Any]:
    """Sync every lake row into a fresh store (SQLite snapshot in a temporary folder), timed."""
    from bench.bench_features import full_lake
    from cdp.online.local import LocalOnlineStore
    from features.online_sync import sync_online_state

    backends = full_lake(users)
    newest = backends.catalog.query("SELECT max(ts) AS t FROM transactions").column("t")[0].as_py()
    until = newest + timedelta(seconds=1)
    with tempfile.TemporaryDirectory(prefix="bench-online-sync-") as folder:
        backends.online_store = LocalOnlineStore(Path(folder) / "online.sqlite")
        load = os.getloadavg()[0]
        cpu0 = time.process_time()
        m = measure(mode, lambda: sync_online_state(backends, until, mode=mode))
        cpu = time.process_time() - cpu0
        store = backends.online_store
        digest = hashlib.sha256()
        for key, blob in sorted(store.get_many(store.keys()).items()):
            digest.update(key.encode() + b"\0" + blob + b"\0")
    return {
        "mode": mode,
        "events": m.extra["events"],
        "replayed": m.extra["replayed"],
        "cards": m.extra["cards"],
        "seconds": round(m.seconds, 2),
        "cpu_seconds": round(cpu, 2),
        "events_per_s": round(m.extra["events"] / m.seconds),
        "events_per_cpu_s": round(m.extra["events"] / cpu),
        "peak_memory_mb": round(m.peak_memory_bytes / 2**20),
        "load_1m_before": round(load, 2),
        "states_sha256": digest.hexdigest(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench online_sync")
    parser.add_argument("--users", type=int, default=DEFAULT_USERS)
    args = parser.parse_args(argv or [])
    from bench.bench_features import full_lake

    full_lake(args.users)  # build (or find) the cached lake before anything is timed
    runs = {}
    for mode in ("seeded", "replay"):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            runs[mode] = pool.submit(timed_sync, args.users, mode).result()
    seeded, replay = runs["seeded"], runs["replay"]
    if seeded["states_sha256"] != replay["states_sha256"]:
        raise SystemExit("online_sync: the seeded and replayed states differ; no figures written")
    speedup = {
        "wall": round(replay["seconds"] / seeded["seconds"], 1),
        "cpu": round(replay["cpu_seconds"] / seeded["cpu_seconds"], 1),
    }
    table = [{k: v for k, v in r.items() if k != "states_sha256"} for r in (seeded, replay)]
    print_table(f"Online state from the lake, {args.users} users (speedup {speedup})", table)
    write_result(
        "online_sync",
        {
            "users": args.users,
            "states_equal": True,
            "speedup": speedup,
            "target_speedup": TARGET_SPEEDUP,
            "runs": table,
        },
    )
