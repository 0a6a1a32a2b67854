"""CPU time per request of each session variant, in-process: the ASGI app is called directly by
32 concurrent tasks (no HTTP server, no load generator sharing the CPU), so the figure is the
session layer's own cost, with far less noise than a throughput run on a shared machine.
Redis runs as a separate process; its CPU is not counted.

    python -m benchmarks.cpu_per_request --requests 6000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from app.ops.gc_tuning import restore, tune_for_serving
from benchmarks.session_apps import BUILDERS, session_cookie
from benchmarks.sessions_bench import ENDPOINTS, PASSWORD, VARIANTS
from harness.processes import ReplicatedRedis

CONCURRENCY = 32


async def _call(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
) -> list[dict[str, Any]]:
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "root_path": "",
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _variant(variant: str, redis_url: str, requests: int, rounds: int) -> dict[str, float]:
    from asgi_lifespan import LifespanManager

    app = BUILDERS[variant](redis_url)
    results: dict[str, float] = {}
    gc_thresholds = tune_for_serving()  # as the servers of the throughput benchmark do
    async with LifespanManager(app) as manager:
        cookies = []
        for n in range(1, 65):
            body = json.dumps({"username": f"user-{n:04d}", "password": PASSWORD}).encode()
            sent = await _call(
                manager.app, "POST", "/login", [(b"content-type", b"application/json")], body
            )
            status = sent[0]["status"]
            assert status == 200, (variant, status, b"".join(m.get("body", b"") for m in sent))
            set_cookies = [v.decode() for k, v in sent[0]["headers"] if k == b"set-cookie"]
            cookie = session_cookie(set_cookies)
            cookies.append([(b"cookie", cookie.encode())] if set_cookies else [])
        for endpoint, (method, path) in ENDPOINTS.items():

            async def worker(i: int, method: str = method, path: str = path) -> None:
                for j in range(requests // CONCURRENCY):
                    headers = cookies[(i + j) % len(cookies)]
                    sent = await _call(manager.app, method, path, headers)
                    assert sent[0]["status"] == 200, sent[0]

            samples = []
            for round_no in range(rounds + 1):
                started = time.process_time()
                await asyncio.gather(*(worker(i) for i in range(CONCURRENCY)))
                if round_no:  # the first round warms up
                    samples.append((time.process_time() - started) / requests * 1e6)
            results[endpoint] = round(statistics.median(samples), 1)
    restore(gc_thresholds)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/cpu.json"))
    args = parser.parse_args()
    os.environ["BENCH_PASSWORD"] = PASSWORD
    with tempfile.TemporaryDirectory(prefix="sf-cpu-") as tmp:
        fleet = ReplicatedRedis(Path(tmp))
        # The production app runs behind the Sentinel: commits acknowledged by the replica.
        os.environ["BENCH_SENTINELS"] = fleet.sentinels
        try:
            table = {
                v: uvloop.run(_variant(v, fleet.master.url, args.requests, args.rounds))
                for v in VARIANTS
            }
        finally:
            fleet.stop()
    report = {
        "cpu_us_per_request": table,
        "setup": {"requests": args.requests, "rounds": args.rounds, "concurrency": CONCURRENCY},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
