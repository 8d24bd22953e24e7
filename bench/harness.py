"""Shared benchmark plumbing: timing, peak memory of a process tree, and the results files."""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

RESULTS_DIR = Path(__file__).parent / "results"


class PeakMemory:
    """Samples the resident memory of this process and all its children; keeps the peak sum."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        me = psutil.Process()
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self.peak_bytes = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._sample())


@dataclass
class Measurement:
    label: str
    seconds: float
    peak_memory_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


def measure(label: str, fn: Callable[[], dict[str, Any] | None]) -> Measurement:
    """Run `fn` once, timing it and sampling peak memory; `fn` may return extra figures."""
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        extra = fn() or {}
        seconds = time.perf_counter() - t0
    return Measurement(label, seconds, mem.peak_bytes, extra)


def write_result(name: str, result: dict[str, Any]) -> Path:
    """Write `bench/results/<name>.json` with the machine facts added, and return its path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
        },
        **result,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return path


def print_table(title: str, rows: list[dict[str, Any]]) -> None:
    """Print a list of flat dicts as one rich table."""
    if not rows:
        return
    table = Table(title=title)
    for key in rows[0]:
        table.add_column(key)
    for row in rows:
        table.add_row(*(f"{v:,.3f}" if isinstance(v, float) else str(v) for v in row.values()))
    Console().print(table)
