"""Server CPU per request of the inference API: the figure that holds on a busy machine.

Run: `python -m bench api_cpu [--requests 2000] [--no-write]`.
Prints one table and writes `bench/results/api_cpu.json` (unless `--no-write`).

Setup: the platform home of `bench.bench_api_load` (the benchmark fraud champion, 200 trees depth 6, the
CLV and segmentation champions, customer features, the cards' online state, one key with every scope), and
the server as that benchmark starts it (`cdp serve`: uvicorn, one worker, every middleware as deployed).

Measure: after a warm-up, one client sends `requests` requests of a route back to back over one keep-alive
connection (mixed cards and customers); the server process's CPU time (user + system, every thread) after
minus before, divided by the requests, is its CPU per request. Wall latency depends on what else the
machine runs; CPU time barely does, so the figure can be compared between runs on a shared machine. The
server's idle CPU (its background threads) is measured too, over one second, to show it is negligible.
Beside it, in this process: the in-process floor of one score, the serving code's own `score_frame` on one
encoded row (predict + SHAP reason codes), and `predict` alone, in CPU time per call.
Target: `POST /v1/fraud/score` <= 1.5 ms of server CPU per request.
"""

from __future__ import annotations

import argparse
import http.client
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


def route_cpu(server: psutil.Process, port: int, key: str, requests: list, count: int) -> dict[str, Any]:
    """Server CPU ms per request of `count` sequential requests (after `WARMUP` unmeasured ones)."""
    send_sequential(port, key, requests, WARMUP)
    before, started = _cpu_seconds(server), time.perf_counter()
    statuses = send_sequential(port, key, requests, count)
    cpu, wall = _cpu_seconds(server) - before, time.perf_counter() - started
    return {
        "requests": count,
        "server_cpu_ms_per_request": round(1000 * cpu / count, 3),
        "wall_ms_per_request": round(1000 * wall / count, 3),
        "statuses": statuses,
    }


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
    parser.add_argument("--no-write", action="store_true", help="Print only; leave the results file alone.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv if argv is not None else [])
    with tempfile.TemporaryDirectory(prefix="bench-api-cpu-") as tmp:
        root = Path(tmp)
        champion, key = prepare_home(root / "home", root)
        by_route = requests_by_route(champion)
        port = free_port()
        log = root / "server.log"
        server = start_server(root / "home", port, rate_limit=100_000.0, log=log)
        try:
            wait_ready(server, f"http://127.0.0.1:{port}", log)
            process = psutil.Process(server.pid)
            idle_before = _cpu_seconds(process)
            time.sleep(1.0)
            idle_ms_per_s = round(1000 * (_cpu_seconds(process) - idle_before), 3)
            rows = [
                {"route": route, **route_cpu(process, port, key, by_route[route], args.requests)}
                for route in ROUTES
            ]
        finally:
            stop_server(server)
        floor = floor_cpu(champion, args.requests)
    for row in rows:
        bad = {s: n for s, n in row["statuses"].items() if s != "200"}
        if bad:
            raise RuntimeError(f"{row['route']} answered other than 200: {bad}")
    rows += [
        {"route": f"in-process {label} (floor)", "requests": args.requests,
         "server_cpu_ms_per_request": ms, "wall_ms_per_request": None, "statuses": {}}
        for label, ms in floor.items()
    ]  # fmt: skip
    print_table(
        f"server CPU per request ({args.requests} sequential requests per route; idle: "
        f"{idle_ms_per_s:g} ms CPU per s)",
        [{k: v for k, v in r.items() if k != "statuses"} for r in rows],
    )
    score = next(r for r in rows if r["route"] == "POST /v1/fraud/score")
    met = score["server_cpu_ms_per_request"] <= SCORE_TARGET_MS
    print(f"target: score <= {SCORE_TARGET_MS:g} ms server CPU per request -> {'met' if met else 'MISSED'}")
    result = {
        "method": "server process CPU (user + system) over N sequential keep-alive requests / N",
        "idle_cpu_ms_per_second": idle_ms_per_s,
        "routes": rows,
        "target_score_cpu_ms": SCORE_TARGET_MS,
        "met": met,
    }
    if not args.no_write:
        print(f"wrote {write_result('api_cpu', result)}")
    return result
