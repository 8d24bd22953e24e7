"""Per-stage wall seconds, CPU seconds and peak RSS of this process and all its children.

A small thread polls the process tree (`psutil`, i.e. /proc) every `interval` seconds and keeps, since the
current stage began, the peak RSS of the whole tree and of its largest single process. CPU seconds are
exact whatever the polling misses: this process and the children it has reaped (`getrusage`), plus the
CPU of children still alive at the stage's end, minus what children alive at its start had used before.
The kernel's own high-water marks (`ru_maxrss` of this process and of its largest reaped child) also
raise the per-process peak, so a short-lived child's spike between two polls still counts.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psutil

GB = 2**30


def _rusage_cpu() -> float:
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def _maxrss_bytes() -> tuple[int, int]:
    """The kernel's peak RSS of this process and of its largest reaped child (ru_maxrss is in KiB)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_maxrss * 1024, children.ru_maxrss * 1024


@dataclass
class StageRecord:
    """One stage: did it succeed, how long, how much CPU, the peak RSS; its anchor when it has one."""

    stage: str
    ok: bool = False
    error: str | None = None
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_tree_gb: float = 0.0
    peak_rss_process_gb: float = 0.0
    peak_process: str | None = None
    processes_seen: int = 0
    load_1min_at_start: float = 0.0
    anchor: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        return {**out, **self.extra}


class TreeSampler:
    """Samples the RSS of this process's tree in a daemon thread; `stage(name)` measures one stage."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.records: list[StageRecord] = []
        self._me = psutil.Process()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset()

    # -- sampling ---------------------------------------------------------------------------------
    def _tree(self) -> list[psutil.Process]:
        try:
            return [self._me, *self._me.children(recursive=True)]
        except psutil.Error:
            return [self._me]

    def sample(self) -> None:
        """Read every process's RSS once and raise the current peaks."""
        total, largest, name = 0, 0, None
        pids = set()
        for p in self._tree():
            try:
                rss = p.memory_info().rss
                label = p.name()
            except psutil.Error:
                continue
            pids.add(p.pid)
            total += rss
            if rss > largest:
                largest, name = rss, f"{label}[{p.pid}]"
        with self._lock:
            self._pids |= pids
            self._peak_tree = max(self._peak_tree, total)
            if largest > self._peak_process:
                self._peak_process, self._peak_name = largest, name

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def _reset(self) -> None:
        with self._lock:
            self._peak_tree, self._peak_process, self._peak_name = 0, 0, None
            self._pids: set[int] = set()

    def _live_children_cpu(self) -> dict[int, float]:
        cpu = {}
        for p in self._tree()[1:]:
            try:
                times = p.cpu_times()
                cpu[p.pid] = times.user + times.system
            except psutil.Error:
                continue
        return cpu

    def __enter__(self) -> TreeSampler:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    # -- stages -----------------------------------------------------------------------------------
    @contextmanager
    def stage(self, name: str) -> Iterator[StageRecord]:
        """Measure the enclosed block as stage `name`; an exception marks it failed (and propagates)."""
        record = StageRecord(stage=name, load_1min_at_start=round(os.getloadavg()[0], 2))
        self.records.append(record)
        self._reset()
        self.sample()
        live_before = self._live_children_cpu()
        cpu_before, (self_max_before, child_max_before) = _rusage_cpu(), _maxrss_bytes()
        started = time.perf_counter()
        try:
            yield record
            record.ok = True
        except BaseException as error:
            record.error = one_line_error(error)
            raise
        finally:
            record.wall_seconds = round(time.perf_counter() - started, 3)
            self.sample()
            live_after = self._live_children_cpu()
            reaped_and_self = _rusage_cpu() - cpu_before
            alive = sum(live_after.values()) - sum(v for pid, v in live_before.items() if pid in live_after)
            record.cpu_seconds = round(reaped_and_self + alive, 2)
            self_max, child_max = _maxrss_bytes()
            with self._lock:
                peak_process, peak_name = self._peak_process, self._peak_name
                if self_max > self_max_before and self_max > peak_process:
                    peak_process, peak_name = self_max, "this process (kernel high-water mark)"
                if child_max > child_max_before and child_max > peak_process:
                    peak_process, peak_name = child_max, "a finished child (kernel high-water mark)"
                record.peak_rss_tree_gb = round(max(self._peak_tree, peak_process) / GB, 3)
                record.peak_rss_process_gb = round(peak_process / GB, 3)
                record.peak_process = peak_name
                record.processes_seen = len(self._pids)


def one_line_error(error: BaseException) -> str:
    """The error as one line: its type and message (platform messages carry no data values), and where."""
    frames = traceback.extract_tb(error.__traceback__)
    where = f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else ""
    message = " ".join(str(error).split())[:300]
    return f"{type(error).__name__}: {message}{where}" if message else f"{type(error).__name__}{where}"
