"""Inference API over HTTP on localhost: an open-loop load test of `POST /v1/fraud/score` on the real server.

Run: `python -m bench.bench_api_http [--rate 200] [--seconds 30] [--connections 8] [--profile FILE]`.
Prints one table and writes `bench/results/api_http.json`.

Setup: a platform home in a temporary folder holds the benchmark champion (`bench.serving_fixture`:
200 trees, depth 6, approved in the MLflow registry), the cards' online state after its 3,000 training
events, and one API key (`fraud:score`). The server is `cdp serve` (uvicorn, one worker) in its own process
on a free port of 127.0.0.1, with the per-key rate limit raised above the offered rate (`CDP_SERVE_RATE_*`)
so the limiter admits every request; everything else (auth, validation, access log file, the champion's
30 s reload check) is as deployed.

Load: a second process sends single-transaction score requests (what-if, the API never records, for cards
with history) with httpx over keep-alive connections at a fixed rate. The schedule is open-loop: request i
is due at `start + i / rate` whatever happened to the earlier ones, and its latency is measured from that
due time, so a stalled server shows up as latency instead of silently lowering the rate (coordinated
omission). Errors are every non-200 answer and every transport failure.

Also recorded: the server's CPU time per request (user + system, from psutil: the figure that does not
depend on what else the machine runs), how late the generator itself sent (its own health) and the
machine's 1-minute load average before and after.
Side by side, in this process while the server is idle: the same model's in-process `booster.predict` on
one encoded row (the floor) and predict + SHAP contributions (what a reason-coded score needs).
Targets: p99 <= 20 ms and no errors at the default rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from bench.harness import print_table, write_result
from bench.serving_fixture import DEPTH, ROUNDS, Champion, load_booster, register_champion

DEFAULT_RATE, DEFAULT_SECONDS, DEFAULT_CONNECTIONS = 200.0, 30.0, 8
P99_TARGET_MS = 20.0
SCORE_PATH = "/v1/fraud/score"
FLOOR_REQUESTS, FLOOR_WARMUP = 1_000, 50
READY_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 10.0
DRAIN_S = 20.0  # after the schedule ends, how long queued requests may still be sent
BODIES = 500  # distinct request bodies, cycled


@dataclass
class LoadResult:
    """What the load generator saw: latency of each scheduled request (ms, from its due time), answers."""

    latencies_ms: np.ndarray
    statuses: dict[str, int]  # "200", "429", "ReadTimeout", ... -> count
    seconds: float  # from the first due time to the last answer
    send_lag_ms: np.ndarray  # how late the generator itself sent each request (its own health)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_bodies(champion: Champion, count: int, seed: int = 11) -> list[bytes]:
    """JSON bodies of single-score requests: training events moved 200 days on (cards with history)."""
    import json

    rng = random.Random(seed)
    out = []
    for _ in range(count):
        event = dict(champion.events[rng.randrange(len(champion.events))])
        event["ts"] = (event["ts"] + timedelta(days=200)).isoformat()
        out.append(json.dumps({"transaction": event}, separators=(",", ":")).encode())
    return out


def prepare_home(home: Path, root: Path) -> tuple[Champion, str]:
    """The platform home the server runs on: champion registered, cards' online state, one API key."""
    from cdp.apikeys.commands import create_key
    from cdp.backends import Backends
    from cdp.settings import Settings
    from inference.card_features import CardFeatures

    backends = Backends(Settings(home=home))
    champion = register_champion(backends, root / "fraud")
    CardFeatures(backends.online_store).features(champion.events, record=True)  # also snapshots
    key = create_key(backends.api_keys, "bench-http", ["fraud:score"])[0]
    return champion, key


def start_server(
    home: Path,
    port: int,
    rate_limit: float,
    log: Path,
    profile: Path | None = None,
    omp_threads: int | None = None,
) -> subprocess.Popen:
    """`cdp serve` on 127.0.0.1:`port` over `home`, its output to `log` (optionally under cProfile,
    whose stats are written when the server stops; optionally with `OMP_NUM_THREADS`)."""
    env = {
        **os.environ,
        **({"OMP_NUM_THREADS": str(omp_threads)} if omp_threads else {}),
        "CDP_HOME": str(home),
        "CDP_SERVE_RATE_PER_SECOND": str(rate_limit),
        "CDP_SERVE_RATE_BURST": str(int(rate_limit)),
    }
    command = [sys.executable]
    if profile is not None:
        command += ["-m", "cProfile", "-o", str(profile)]
    command += ["-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(server: subprocess.Popen, url: str, log: Path, timeout: float = READY_TIMEOUT_S) -> None:
    """Block until `GET /ping` answers 200 (the champion is loaded), or fail with the server's output."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited ({server.returncode}): {tail}")
        try:
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"the server at {url} was not ready within {timeout:.0f} s")


def stop_server(server: subprocess.Popen) -> None:
    """SIGINT (uvicorn shuts down cleanly and cProfile writes its file), then kill if it lingers."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _drive(
    url: str, key: str, bodies: list[bytes], rate: float, seconds: float, connections: int
) -> LoadResult:
    """A scheduler puts request i on a queue at its due time; one sender per connection takes the next
    due request as soon as its connection is free (the wrk2 design: the client's own queue, not the
    connection pool's, holds the backlog). A request still unsent `DRAIN_S` after the schedule ends is
    counted as an error ("Unsent")."""
    import httpx

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    count = int(rate * seconds)
    latencies = np.full(count, np.nan)
    lags = np.zeros(count)
    statuses: Counter[str] = Counter()
    due_queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=REQUEST_TIMEOUT_S
    ) as client:
        # Open every keep-alive connection and warm the server before the clock starts.
        for _ in range(3):
            await asyncio.gather(*(client.post(SCORE_PATH, content=bodies[i]) for i in range(connections)))
        start = time.perf_counter() + 0.05
        give_up = start + seconds + DRAIN_S

        async def sender() -> None:
            while (item := await due_queue.get()) is not None:
                i, due = item
                if time.perf_counter() > give_up:
                    statuses["Unsent"] += 1
                    continue
                try:
                    response = await client.post(SCORE_PATH, content=bodies[i % len(bodies)])
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as error:
                    statuses[type(error).__name__] += 1
                latencies[i] = (time.perf_counter() - due) * 1000.0

        senders = [asyncio.create_task(sender()) for _ in range(connections)]
        for i in range(count):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags[i] = (time.perf_counter() - due) * 1000.0
            due_queue.put_nowait((i, due))
        for _ in senders:
            due_queue.put_nowait(None)
        await asyncio.gather(*senders)
        elapsed = time.perf_counter() - start
    return LoadResult(latencies, dict(statuses), elapsed, lags)


def generate_load(
    url: str, key: str, bodies: list[bytes], rate: float, seconds: float, connections: int
) -> LoadResult:
    """Send `rate * seconds` score requests on an open-loop schedule (runs in the load process)."""
    return asyncio.run(_drive(url, key, bodies, rate, seconds, connections))


def floor_latencies(
    champion: Champion, threads: int | None = None, n: int = FLOOR_REQUESTS
) -> dict[str, np.ndarray]:
    """In-process latency (ms) of one encoded row: `predict`, and `predict` + `pred_contribs`, with the
    serving thread count (as the server loads the booster and builds its matrices) or `threads`."""
    import xgboost

    from inference.loaded import SERVING_THREADS

    threads = threads or SERVING_THREADS
    booster = load_booster(champion)
    booster.set_param({"nthread": threads})
    names = list(champion.features)
    rows = champion.encoded[np.random.default_rng(3).choice(len(champion.encoded), 200, replace=False)]

    def predict(i: int) -> None:
        booster.predict(xgboost.DMatrix(rows[i % 200 : i % 200 + 1], feature_names=names, nthread=threads))

    def predict_shap(i: int) -> None:
        matrix = xgboost.DMatrix(rows[i % 200 : i % 200 + 1], feature_names=names, nthread=threads)
        booster.predict(matrix)
        booster.predict(matrix, pred_contribs=True)

    out = {}
    for label, fn in (("predict", predict), ("predict_shap", predict_shap)):
        for i in range(FLOOR_WARMUP):
            fn(i)
        ms = np.empty(n)
        for i in range(n):
            t0 = time.perf_counter()
            fn(i)
            ms[i] = (time.perf_counter() - t0) * 1000.0
        out[label] = ms
    return out


def latency_row(path: str, ms: np.ndarray, floor_p50: float) -> dict[str, Any]:
    """One table row: percentiles of `ms` and the p50 as a multiple of the floor's."""
    p50, p90, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 99))
    return {
        "path": path,
        "n": int(ms.size),
        "p50_ms": p50,
        "p90_ms": p90,
        "p99_ms": p99,
        "max_ms": float(ms.max()),
        "x_floor_p50": p50 / floor_p50,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_api_http", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--rate", type=float, default=DEFAULT_RATE, help="requests per second offered")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of the load")
    parser.add_argument("--connections", type=int, default=DEFAULT_CONNECTIONS, help="keep-alive connections")
    parser.add_argument("--profile", type=Path, help="run the server under cProfile and write its stats here")
    parser.add_argument(
        "--xgb-threads",
        type=int,
        help="XGBoost threads in the server (OMP_NUM_THREADS) and the floor (default: as deployed)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv if argv is not None else (sys.argv[1:] if __name__ == "__main__" else []))
    with tempfile.TemporaryDirectory(prefix="bench-api-http-") as folder:
        root = Path(folder)
        champion, key = prepare_home(root / "home", root)
        bodies = request_bodies(champion, BODIES)
        floors = floor_latencies(champion, args.xgb_threads)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log = root / "server.log"
        server = start_server(
            root / "home", port, max(10 * args.rate, 1_000), log, args.profile, args.xgb_threads
        )
        try:
            wait_ready(server, url, log)
            with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
                pool.submit(time.sleep, 0).result()  # the load process is up before the server is watched
                server_cpu = psutil.Process(server.pid).cpu_times()
                load_before = os.getloadavg()[0]
                load = pool.submit(
                    generate_load, url, key, bodies, args.rate, args.seconds, args.connections
                ).result()
                after = psutil.Process(server.pid).cpu_times()
                server_cpu_s = (after.user + after.system) - (server_cpu.user + server_cpu.system)
                load_after = os.getloadavg()[0]
        finally:
            stop_server(server)
        access_lines = (root / "home" / "logs" / "api-access.log").read_text().count("\n")

    scheduled = int(load.latencies_ms.size)
    answered_ms = load.latencies_ms[np.isfinite(load.latencies_ms)]
    ok = load.statuses.get("200", 0)
    if not answered_ms.size:
        raise RuntimeError(f"no score request was answered: {load.statuses}")
    errors = scheduled - ok  # every non-200 answer, transport failure or unsent request
    floor_p50 = float(np.percentile(floors["predict"], 50))
    rows = [
        latency_row("in-process booster.predict, 1 row (floor)", floors["predict"], floor_p50),
        latency_row("in-process predict + SHAP, 1 row", floors["predict_shap"], floor_p50),
        latency_row(f"HTTP POST {SCORE_PATH} @ {args.rate:g}/s open loop", answered_ms, floor_p50),
    ]
    http = rows[-1]
    achieved = ok / load.seconds
    met = {"p99_ms": http["p99_ms"] <= P99_TARGET_MS, "errors": errors == 0}
    print_table(
        f"Fraud score over HTTP: {args.rate:g} req/s for {args.seconds:g} s, {args.connections} connections "
        f"({ROUNDS} trees depth {DEPTH})",
        rows,
    )
    summary = {
        "offered_rate": args.rate,
        "achieved_rate": round(achieved, 1),
        "scheduled": scheduled,
        "ok": ok,
        "errors": errors,
        "statuses": load.statuses,
        "server_cpu_ms_per_request": round(1000 * server_cpu_s / max(answered_ms.size, 1), 3),
        "generator_send_lag_p99_ms": round(float(np.percentile(load.send_lag_ms, 99)), 3),
        "machine_load_1m": [round(load_before, 2), round(load_after, 2)],
        "access_log_lines": access_lines,
    }
    print_table("Load", [summary | {"statuses": str(load.statuses)}])
    print(
        f"targets: p99 <= {P99_TARGET_MS:g} ms -> {'met' if met['p99_ms'] else 'MISSED'}; "
        f"zero errors -> {'met' if met['errors'] else 'MISSED'}"
    )
    result = {
        "model": {"trees": ROUNDS, "max_depth": DEPTH, "features": len(champion.features)},
        "load": {
            "rate": args.rate,
            "seconds": args.seconds,
            "connections": args.connections,
            "schedule": "open loop; latency from each request's due time (coordinated omission corrected)",
            "client": "httpx AsyncClient, keep-alive, separate process",
            "server": "cdp serve (uvicorn, 1 worker) on 127.0.0.1, separate process",
        },
        "summary": summary,
        "results": rows,
        "targets": {"p99_ms": P99_TARGET_MS, "errors": 0},
        "met": met,
        "profiled": args.profile is not None,
        "xgb_threads": args.xgb_threads or "as deployed (the serving thread count)",
    }
    if not args.no_write:
        print(f"wrote {write_result('api_http', result)}")
    return result


if __name__ == "__main__":
    main()
