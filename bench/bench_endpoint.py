"""The SageMaker inference container's `/invocations` beside the platform's in-process app, over HTTP.

Run: `python -m bench endpoint [--requests 1000] [--warmup 50]`. Prints one table and writes
`bench/results/endpoint.json`.

Setup: the serving benchmarks' champion (`bench.serving_fixture`: 200 trees, depth 6, on the fraud view's
online features) is registered and approved in a platform home in a temporary folder. Two servers run
side by side on free ports of 127.0.0.1, each uvicorn with one worker in its own process:
- in-process app: `cdp serve --sagemaker` over that home (the registry's champion, no API key on
  `/invocations`, as inside a container);
- container: the image's `serve` entry point with SageMaker's environment only, the champion's model
  folder as `SM_MODEL_DIR` (what the training step's model.tar.gz unpacks to).
Both answer the same JSON bodies (`{"instances": [...]}` of raw online feature rows, `mcc_group` as text)
of 1 and of 100 rows; the answers are checked equal before timing.

Load: one client, keep-alive connections, requests sent one after the other and alternated between the
two servers (A, B, A, B, ...) so both see the same background load of the machine; latency is the
client's wall time of each request. Baseline: the in-process app. Target: the container adds at most
1 ms to the p50 of either size.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.bench_api_http import free_port, stop_server, wait_ready
from bench.harness import print_table, write_result
from bench.serving_fixture import Champion, register_champion

ROW_COUNTS = (1, 100)
DEFAULT_REQUESTS, DEFAULT_WARMUP = 1000, 50
TARGET_ADDED_P50_MS = 1.0
REPO = Path(__file__).resolve().parent.parent


def feature_rows(champion: Champion, count: int, seed: int = 3) -> list[dict[str, Any]]:
    """Raw online feature rows of the champion's events (JSON-ready), picked at random."""
    from cdp.online.local import LocalOnlineStore
    from features.fraud import FRAUD_VIEW
    from features.online import OnlineFeatures

    online = OnlineFeatures(FRAUD_VIEW, LocalOnlineStore(None))
    rows = [online.update(e) for e in champion.events]
    picked = random.Random(seed).sample(rows, count)
    return json.loads(json.dumps(picked, default=str))


def start_in_process(home: Path, port: int, log: Path) -> subprocess.Popen:
    """`cdp serve --sagemaker` over `home` (the registry's champion)."""
    env = {**os.environ, "CDP_HOME": str(home)}
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--sagemaker",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_container(model_dir: Path, port: int, log: Path, work: Path) -> subprocess.Popen:
    """The image's `serve` entry point with SageMaker's environment only (one worker)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(work),
        "PYTHONPATH": str(REPO),
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
        "CDP_MODEL_NAME": "cdp-fraud",
        "CDP_MODEL_VERSION": "1",
    }
    command = [sys.executable, "-m", "inference.container.serve", "serve"]
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)


def _percentiles(samples: list[float]) -> dict[str, float]:
    values = np.asarray(samples) * 1000.0
    return {"p50_ms": float(np.percentile(values, 50)), "p99_ms": float(np.percentile(values, 99))}


def measure(urls: dict[str, str], body: bytes, requests: int, warmup: int) -> dict[str, dict[str, float]]:
    """p50/p99 of `requests` sequential posts of `body` to each server, alternated between them."""
    import httpx

    headers = {"Content-Type": "application/json"}
    clients = {name: httpx.Client(base_url=url, headers=headers, timeout=30.0) for name, url in urls.items()}
    samples: dict[str, list[float]] = {name: [] for name in urls}
    try:
        answers = {name: c.post("/invocations", content=body).json() for name, c in clients.items()}
        first, second = answers.values()
        if not np.allclose(first["predictions"], second["predictions"], atol=1e-9) or first.get(
            "reasons"
        ) != second.get("reasons"):
            raise RuntimeError("the two servers answered the same body differently")
        for i in range(warmup + requests):
            for name, client in clients.items():
                started = time.perf_counter()
                response = client.post("/invocations", content=body)
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(f"{name} answered {response.status_code}")
                if i >= warmup:
                    samples[name].append(elapsed)
    finally:
        for client in clients.values():
            client.close()
    return {name: _percentiles(values) for name, values in samples.items()}


def run(requests: int = DEFAULT_REQUESTS, warmup: int = DEFAULT_WARMUP) -> dict[str, Any]:
    from cdp.backends import Backends
    from cdp.settings import Settings

    with tempfile.TemporaryDirectory(prefix="cdp-bench-endpoint-") as tmp:
        root = Path(tmp)
        home = root / "home"
        champion = register_champion(Backends(Settings(home=home)), root / "fraud")
        work = root / "container"
        work.mkdir()
        ports = {"in-process app": free_port(), "container": free_port()}
        logs = {name: root / f"{name.replace(' ', '-')}.log" for name in ports}
        servers = {
            "in-process app": start_in_process(home, ports["in-process app"], logs["in-process app"]),
            "container": start_container(champion.folder, ports["container"], logs["container"], work),
        }
        try:
            urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
            for name, server in servers.items():
                wait_ready(server, urls[name], logs[name])
            results = {}
            for count in ROW_COUNTS:
                body = json.dumps({"instances": feature_rows(champion, count)}).encode()
                results[count] = measure(urls, body, requests, warmup)
        finally:
            for server in servers.values():
                stop_server(server)
    rows = []
    for count, by_server in results.items():
        base, ours = by_server["in-process app"], by_server["container"]
        rows.append(
            {
                "rows": count,
                "in-process p50 ms": base["p50_ms"],
                "container p50 ms": ours["p50_ms"],
                "added p50 ms": ours["p50_ms"] - base["p50_ms"],
                "in-process p99 ms": base["p99_ms"],
                "container p99 ms": ours["p99_ms"],
            }
        )
    worst = max(r["added p50 ms"] for r in rows)
    return {
        "requests_per_size": requests,
        "warmup": warmup,
        "results": rows,
        "target_added_p50_ms": TARGET_ADDED_P50_MS,
        "worst_added_p50_ms": worst,
        "meets_target": worst <= TARGET_ADDED_P50_MS,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench endpoint", description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS, help="timed requests per server")
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="untimed requests first")
    args = parser.parse_args(argv or [])
    result = run(args.requests, args.warmup)
    print_table("/invocations over HTTP: container vs in-process app (1 worker each)", result["results"])
    verdict = "meets" if result["meets_target"] else "MISSES"
    print(f"container adds {result['worst_added_p50_ms']:.3f} ms p50 at worst: {verdict} the <= 1 ms target")
    print(f"written: {write_result('endpoint', result)}")


if __name__ == "__main__":
    main(sys.argv[1:])
