"""Benchmark `cdp generate`: wall time, rows/s and peak memory, against writing random columns with pandas.

`python -m bench generate` runs 2,000 users (full size); lower it with `CDP_BENCH_USERS=200` or
`python bench/bench_generate.py 200`. The baseline writes the same number of rows of random columns with
`DataFrame.to_csv` (capped at BASELINE_ROWS and reported as rows/s, so the ratio is scale-free).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.harness import measure, print_table, write_result
from cdp.synth.generator import generate

DEFAULT_USERS = 2000
BASELINE_ROWS = 2_000_000
WORKERS = 2


def _users_from_env_or_argv() -> int:
    if len(sys.argv) > 1 and sys.argv[1].isdigit():
        return int(sys.argv[1])
    return int(os.environ.get("CDP_BENCH_USERS", DEFAULT_USERS))


def _baseline(rows: int, path: Path) -> dict[str, Any]:
    """Random columns shaped like the transactions file, written with pandas."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "User": rng.integers(0, 2000, rows),
            "Card": rng.integers(0, 9, rows),
            "Year": rng.integers(1991, 2021, rows),
            "Month": rng.integers(1, 13, rows),
            "Day": rng.integers(1, 29, rows),
            "Time": rng.integers(0, 1440, rows),
            "Amount": rng.lognormal(3.5, 1.0, rows).round(2),
            "Use Chip": rng.choice(["Swipe Transaction", "Chip Transaction", "Online Transaction"], rows),
            "Merchant Name": rng.integers(-(2**63), 2**63 - 1, rows, dtype=np.int64),
            "Merchant City": rng.choice(["Springfield", "ONLINE", "Rome"], rows),
            "Merchant State": rng.choice(["CA", "", "Italy"], rows),
            "Zip": rng.integers(1000, 99999, rows).astype(float),
            "MCC": rng.integers(1000, 9999, rows),
            "Errors?": rng.choice(["", "Bad PIN"], rows, p=[0.985, 0.015]),
            "Is Fraud?": rng.choice(["No", "Yes"], rows, p=[0.9988, 0.0012]),
        }
    )
    frame.to_csv(path, index=False)
    return {"rows": rows, "bytes": path.stat().st_size}


def main(users: int | None = None) -> dict[str, Any]:
    users = users or _users_from_env_or_argv()
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as tmp:
        folder = Path(tmp)
        summary_box: dict[str, Any] = {}

        def run_generate() -> dict[str, Any]:
            summary = generate(folder / "data", users, workers=WORKERS)
            summary_box["summary"] = summary
            return {"rows": summary.transactions}

        ours = measure(f"generate {users} users", run_generate)
        rows = ours.extra["rows"]
        baseline = measure(
            "pandas to_csv random columns", lambda: _baseline(min(rows, BASELINE_ROWS), folder / "b.csv")
        )

    ours_rate = rows / ours.seconds
    base_rate = baseline.extra["rows"] / baseline.seconds
    table = [
        {
            "run": m.label,
            "rows": m.extra["rows"],
            "seconds": m.seconds,
            "rows_per_s": m.extra["rows"] / m.seconds,
            "peak_memory_gb": m.peak_memory_bytes / 2**30,
        }
        for m in (ours, baseline)
    ]
    print_table("Synthetic data generation", table)
    result = {
        "users": users,
        "workers": WORKERS,
        "runs": table,
        "rows_per_s_ratio_vs_baseline": ours_rate / base_rate,
        "fraud_labelled": summary_box["summary"].fraud_labelled,
    }
    path = write_result("generate", result)
    print(
        f"rows/s ratio (generate incl. ground truth / pandas to_csv): {ours_rate / base_rate:.2f}  -> {path}"
    )
    return result


if __name__ == "__main__":
    main()
