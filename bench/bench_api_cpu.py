"""Server CPU per request of the inference API: the figure that holds on a busy machine.

Run: `python -m bench api_cpu [--requests 2000] [--baseline DIR] [--rounds 8] [--no-write]`.
Prints one table and writes `bench/results/api_cpu.json` (unless `--no-write`).

Setup: the platform home of `bench.bench_api_load` (the benchmark fraud champion, 200 trees depth 6, the
CLV and segmentation champions, customer features, the cards' online state, one key with every scope), and
the server as that benchmark starts it (`cdp serve`: uvicorn, one worker, every middleware as deployed).

Measure: after a warm-up, one client sends requests of a route back to back over one keep-alive connection
(mixed cards and customers); the server process's CPU time (user + system, every thread) after minus
before, divided by the requests, is its CPU per request. Wall latency depends on what else the machine
runs; CPU time much less, but a loaded machine still inflates it (shared caches, hyper-threads), so
`--baseline DIR` (a checkout of another commit, e.g. `git worktree add DIR <commit>`) runs a second
server from that code on the same home and alternates `--rounds` rounds between the two: the ratio of
their medians holds where the absolute figures drift. The server's idle CPU (its background threads) is
measured too, over one second. Beside it, in this process: the in-process floor of one score, the serving
code's own `score_frame` on one encoded row (predict + SHAP reason codes), and `predict` alone, hot in
the CPU's caches (a server's requests find them partly cold).
Target: `POST /v1/fraud/score` <= 1.5 ms of server CPU per request.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.bench_api_http import free_port, start_server, stop_server, wait_ready
from bench.bench_api_load import prepare_home, requests_by_route
from bench.harness import print_table, write_result
from bench.serving_fixture import Champion

SCORE_TARGET_MS = 1.5
WARMUP = 200
ROUTES = ("GET /ping", "POST /v1/fraud/score", "GET /v1/customers/{token}/profile")
CODE = Path(__file__).resolve().parent.parent  # the code tree this benchmark runs from


def _cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def send_sequential(port: int, key: str, requests: list, count: int) -> dict[str, int]:
    """`count` requests (cycled from `requests`) one after the other over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    statuses: dict[str, int] = {}
    try:
        for i in range(count):
            method, path, body = requests[i % len(requests)]
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
    finally:
        connection.close()
    return statuses


def server_cpu_ms(server: psutil.Process, port: int, key: str, requests: list, count: int) -> float:
    """Server CPU ms per request of `count` sequential requests; every one must be answered 200."""
    before = _cpu_seconds(server)
    statuses = send_sequential(port, key, requests, count)
    cpu = _cpu_seconds(server) - before
    if statuses != {"200": count}:
        raise RuntimeError(f"answers other than 200: {statuses}")
    return 1000 * cpu / count


def start_from(code: Path, home: Path, folder: Path, label: str) -> tuple[Any, int]:
    """`cdp serve` from the code tree `code` (its working folder and first import path) on `home`."""
    port = free_port()
    log = folder / f"server-{label}.log"
    saved_cwd, saved_path = os.getcwd(), os.environ.get("PYTHONPATH")
    os.chdir(code)  # `python -m` imports from its working folder first
    os.environ["PYTHONPATH"] = str(code)
    try:
        server = start_server(home, port, rate_limit=100_000.0, log=log)
    finally:
        os.chdir(saved_cwd)
        if saved_path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_path
    try:
        wait_ready(server, f"http://127.0.0.1:{port}", log)
    except BaseException:
        stop_server(server)
        raise
    return server, port


def floor_cpu(champion: Champion, count: int) -> dict[str, float]:
    """In-process CPU ms per call on one encoded row: `predict`, and the serving `score_frame`."""
    import xgboost

    from inference.fraud_scoring import score_frame
    from inference.loaded import SERVING_THREADS, load_folder

    model = load_folder(champion.folder, "cdp-fraud", 1)
    rows = champion.encoded[np.random.default_rng(3).choice(len(champion.encoded), 200, replace=False)]
    names = list(champion.features)

    def predict(i: int) -> None:
        one_row = rows[i % 200 : i % 200 + 1]
        model.booster.predict(xgboost.DMatrix(one_row, feature_names=names, nthread=SERVING_THREADS))

    def score(i: int) -> None:
        score_frame(model, rows[i % 200 : i % 200 + 1], 3)

    out = {}
    for label, fn in (("predict", predict), ("score_frame", score)):
        for i in range(WARMUP):
            fn(i)
        started = time.process_time()
        for i in range(count):
            fn(i)
        out[label] = round(1000 * (time.process_time() - started) / count, 3)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench api_cpu", description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="Measured requests per route.")
    parser.add_argument("--baseline", type=Path, help="A code tree to compare with (alternating rounds).")
    parser.add_argument("--rounds", type=int, default=8, help="Rounds per route (the requests split).")
    parser.add_argument("--no-write", action="store_true", help="Print only; leave the results file alone.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv if argv is not None else [])
    trees = {"this": CODE, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    per_round = max(1, args.requests // args.rounds)
    figures: dict[tuple[str, str], list[float]] = {(t, r): [] for t in trees for r in ROUTES}
    with tempfile.TemporaryDirectory(prefix="bench-api-cpu-") as tmp:
        root = Path(tmp)
        champion, key = prepare_home(root / "home", root)
        by_route = requests_by_route(champion)
        servers: dict[str, tuple[Any, int]] = {}
        try:
            for label, code in trees.items():
                servers[label] = start_from(code, root / "home", root, label)
            idle = {}
            for label, (server, port) in servers.items():
                process = psutil.Process(server.pid)
                before = _cpu_seconds(process)
                time.sleep(1.0)
                idle[label] = round(1000 * (_cpu_seconds(process) - before), 3)
                for route in ROUTES:
                    send_sequential(port, key, by_route[route], WARMUP)
            for _ in range(args.rounds):
                for route in ROUTES:
                    for label, (server, port) in servers.items():
                        ms = server_cpu_ms(psutil.Process(server.pid), port, key, by_route[route], per_round)
                        figures[(label, route)].append(ms)
        finally:
            for server, _ in servers.values():
                stop_server(server)
        floor = floor_cpu(champion, args.requests)
    rows = [
        {"code": label, "route": route, "requests": per_round * args.rounds,
         "cpu_ms_median": round(statistics.median(figures[(label, route)]), 3),
         "cpu_ms_min": round(min(figures[(label, route)]), 3),
         "cpu_ms_max": round(max(figures[(label, route)]), 3)}
        for route in ROUTES for label in trees
    ]  # fmt: skip
    rows += [
        {"code": "this", "route": f"in-process {label} (floor, hot)", "requests": args.requests,
         "cpu_ms_median": ms, "cpu_ms_min": None, "cpu_ms_max": None}
        for label, ms in floor.items()
    ]  # fmt: skip
    load = os.getloadavg()[0]
    print_table(
        f"server CPU ms per request ({args.rounds} rounds of {per_round} sequential requests per route; "
        f"idle CPU ms per s: {idle}; load average {load:.1f})",
        rows,
    )
    score = next(r for r in rows if r["code"] == "this" and r["route"] == "POST /v1/fraud/score")
    met = score["cpu_ms_median"] <= SCORE_TARGET_MS
    print(f"target: score <= {SCORE_TARGET_MS:g} ms server CPU per request -> {'met' if met else 'MISSED'}")
    result = {
        "method": "server process CPU (user + system) over sequential keep-alive requests / requests",
        "load_average_1m": round(load, 2),
        "idle_cpu_ms_per_second": idle,
        "routes": rows,
        "target_score_cpu_ms": SCORE_TARGET_MS,
        "met": met,
    }
    if not args.no_write:
        print(f"wrote {write_result('api_cpu', result)}")
    return result
