"""Benchmark the batch job against (a) plain pandas read_csv -> to_parquet and (b) a bare DuckDB
CSV -> Parquet COPY (the speed limit), on the same generated transactions file, in the same process.

`python -m bench batch` uses 2,000 users (~24M rows, the real size); lower it with `CDP_BENCH_USERS=200`.
The generated data is cached under `bench/.cache/` (git-ignored) so repeated runs skip generation.
Targets (issue): >= 3x faster than pandas, within 1.5x of the DuckDB COPY, peak memory <= 8 GB.
The source file is read once before the runs, so each of them reads it from the page cache. The three
contestants run in turns, `CDP_BENCH_REPEATS` rounds (default 3), and each is reported by its median run,
so a disturbance of the machine during one run does not decide a ratio.
"""

from __future__ import annotations

import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from bench.harness import measure, print_table, write_result
from cdp.backends import Backends
from cdp.batch.job import run_batch
from cdp.ibm.schema import TRANSACTIONS_FILE
from cdp.settings import Settings
from cdp.synth.generator import generate

CACHE = Path(__file__).parent / ".cache"


def _users() -> int:
    if len(sys.argv) > 2 and sys.argv[-1].isdigit():
        return int(sys.argv[-1])
    return int(os.environ.get("CDP_BENCH_USERS", 2000))


def _cpu_seconds() -> float:
    """CPU seconds of this process and its finished children (the batch job's worker processes)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def warm_page_cache(path: Path) -> float:
    """Read `path` once so every contestant reads its source from memory (the batch job runs first and
    would otherwise pay the disk reads alone); returns the seconds it took."""
    start = time.perf_counter()
    block = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(block):
            pass
    return time.perf_counter() - start


def with_cpu(fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """`fn` adding the CPU seconds it used (this process and its finished worker processes)."""

    def run() -> dict[str, Any]:
        cpu = _cpu_seconds()
        extra = fn()
        return {**extra, "cpu_seconds": round(_cpu_seconds() - cpu, 1)}

    return run


def source_data(users: int) -> Path:
    """Generated IBM files for `users` users (cached)."""
    folder = CACHE / f"ibm-{users}"
    if not (folder / "ground_truth" / "manifest.json").exists():
        shutil.rmtree(folder, ignore_errors=True)
        generate(folder, users=users, seed=7, workers=2)
    return folder


def main() -> None:
    users = _users()
    src = source_data(users)
    csv = src / TRANSACTIONS_FILE
    warm_seconds = warm_page_cache(csv)
    load_at_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    try:

        def ours() -> dict[str, Any]:
            home = work / "home"
            shutil.rmtree(home, ignore_errors=True)  # a fresh lake every run (a second run would resume)
            b = Backends(Settings(home=home, workers=2))
            r = run_batch(src, b)
            tx = r.files[TRANSACTIONS_FILE]
            return {
                "rows": tx["rows_read"],
                "lake_rows": r.batch_rows,
                "quarantined": tx["rows_quarantined"],
                "phases": r.seconds,
                "phase_cpu_seconds": r.cpu_seconds,
            }

        def pandas_baseline() -> dict[str, Any]:
            out = work / "pandas.parquet"
            frame = pd.read_csv(csv)
            frame.to_parquet(out)
            return {"rows": len(frame)}

        def duckdb_copy() -> dict[str, Any]:
            out = work / "duckdb.parquet"
            con = duckdb.connect()
            con.execute("SET threads TO 2")
            path = str(csv).replace("'", "''")
            con.execute(f"COPY (SELECT * FROM read_csv('{path}', header = true)) TO '{out}' (FORMAT parquet)")
            rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
            con.close()
            return {"rows": rows}

        contestants = [
            ("cdp batch job", ours),
            ("pandas read_csv+to_parquet", pandas_baseline),
            ("duckdb COPY csv->parquet", duckdb_copy),
        ]
        rounds: dict[str, list[Any]] = {label: [] for label, _ in contestants}
        for _ in range(max(1, int(os.environ.get("CDP_BENCH_REPEATS", 3)))):
            for label, fn in contestants:
                rounds[label].append(measure(label, with_cpu(fn)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results = [sorted(runs, key=lambda m: m.seconds)[len(runs) // 2] for runs in rounds.values()]
    for m in results:
        m.extra["all_runs_seconds"] = [round(r.seconds, 2) for r in rounds[m.label]]
    ours_m, pandas_m, duck_m = results
    rows = ours_m.extra["rows"]
    table = [
        {
            "run": m.label,
            "seconds": m.seconds,
            "rows/s": rows / m.seconds,
            "peak GB": m.peak_memory_bytes / 2**30,
            "time / ours": m.seconds / ours_m.seconds,
        }
        for m in results
    ]
    print_table(f"batch job, {rows:,} transactions ({users:,} users)", table)
    path = write_result(
        "batch",
        {
            "users": users,
            "rows": rows,
            "runs": [
                {"label": m.label, "seconds": m.seconds, "peak_memory_bytes": m.peak_memory_bytes, **m.extra}
                for m in results
            ],
            "speedup_vs_pandas": pandas_m.seconds / ours_m.seconds,
            "slowdown_vs_duckdb_copy": ours_m.seconds / duck_m.seconds,
            "targets": {"speedup_vs_pandas": ">= 3", "slowdown_vs_duckdb_copy": "<= 1.5", "peak_gb": "<= 8"},
            "load_1min_at_start": round(load_at_start, 2),
            "statistic": "median run of each contestant (all runs in all_runs_seconds)",
            "source_read_seconds_before_runs": round(warm_seconds, 2),
        },
    )
    print(f"results: {path}")


if __name__ == "__main__":
    main()
