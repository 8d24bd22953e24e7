"""A step script's process, measured: wall time, CPU seconds and peak resident memory of its process tree.

The peak is the larger of two readings taken every `interval` seconds: the summed RSS of the tree
(psutil; counts a script's own children) and the script's own high-water mark (`VmHWM` in
/proc/<pid>/status on Linux: a peak between two samples still counts). The kernel's `ru_maxrss` of the
reaped child is not used: it carries the RSS of the parent the child was forked from, so every step of a
big process would report at least that. CPU seconds are the child's user + system time, its waited-for
children included (`os.wait4`).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil

KILLED_EXIT_CODES = frozenset({-signal.SIGKILL, 128 + signal.SIGKILL})  # signalled, or via a shell: 137


@dataclass(frozen=True)
class ProcessUsage:
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_bytes: int

    @property
    def killed(self) -> bool:
        """SIGKILL: on a machine short of memory, the kernel's out-of-memory killer."""
        return self.returncode in KILLED_EXIT_CODES


class TreeMemorySampler:
    """Samples the summed RSS of a process and its descendants in a thread; keeps the peak."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        self.pid, self.interval = pid, interval
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"rss-{pid}", daemon=True)

    def _high_water_mark(self) -> int:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
        return 0

    def _sample(self) -> int:
        try:
            root = psutil.Process(self.pid)
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for process in processes:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return max(total, self._high_water_mark())

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_bytes = max(self.peak_bytes, self._sample())
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self.peak_bytes = self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def memory_limit(limit_bytes: int) -> Callable[[], None]:
    """A `preexec_fn` capping the child's address space: it fails with MemoryError instead of growing
    until the kernel kills it (or another process)."""

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))

    return apply


def run_measured(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    stdout: IO[bytes] | None = None,
    preexec_fn: Callable[[], None] | None = None,
    interval: float = 0.1,
) -> ProcessUsage:
    """Run `command` to its end (stderr into `stdout`) and measure it (see the module docstring)."""
    started = time.perf_counter()
    process = subprocess.Popen(  # noqa: S603 - the step's own interpreter and script
        list(command), env=dict(env), cwd=cwd, stdout=stdout, stderr=subprocess.STDOUT, preexec_fn=preexec_fn
    )
    with TreeMemorySampler(process.pid, interval) as sampler:
        try:
            _, status, usage = os.wait4(process.pid, 0)
        except BaseException:  # interrupted: leave no orphan behind
            process.kill()
            process.wait()
            raise
    process.returncode = os.waitstatus_to_exitcode(status)
    return ProcessUsage(
        returncode=process.returncode,
        wall_seconds=time.perf_counter() - started,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_bytes=sampler.peak_bytes,
    )


def gigabytes(size: int) -> str:
    """`21_990_232_555` -> "20.5 GB" (GiB, as the kernel and `free -g` count)."""
    return f"{size / 2**30:.1f} GB"
