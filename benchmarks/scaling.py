"""Throughput of the production app as it scales: one replica under gunicorn with 1 and 2
workers, then the loopback fleet (Sentinel, WAIT for a replica, HAProxy) with 1, 2 and 3
replicas. Same wrk load (POST /counter and GET /me over many sessions) for each.

    python -m benchmarks.scaling --seconds 6
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.session_apps import session_cookie
from harness.ha_cluster import LOAD_PASSWORD, HACluster
from harness.processes import ROOT, AppServer, RedisServer

LUA = ROOT / "benchmarks" / "wrk_sessions.lua"
ENDPOINTS = {"read+write": ("POST", "/counter"), "read": ("GET", "/me")}


def seed(url: str, password: str, sessions: int, path: Path) -> Path:
    lines = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for n in range(1, sessions + 1):
            for _ in range(10):  # a login may meet a failover (503 + Retry-After): bounded retry
                client.cookies.clear()
                body = {"username": f"user-{n:04d}", "password": password}
                reply = client.post("/login", json=body)
                if reply.status_code != 503:
                    break
                time.sleep(float(reply.headers.get("retry-after", "1")))
            reply.raise_for_status()
            lines.append(session_cookie(reply.headers.get_list("set-cookie")))
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(url: str, method: str, cookies: Path, seconds: int, connections: int) -> float:
    env = {"WRK_COOKIES": str(cookies), "WRK_METHOD": method, "PATH": "/usr/bin:/bin"}
    out = subprocess.run(  # noqa: S603
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(LUA), url],  # noqa: S607
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]


def measure(url: str, cookies: Path, seconds: int, rounds: int) -> dict[str, float]:
    result = {}
    for name, (method, path) in ENDPOINTS.items():
        wrk(url + path, method, cookies, 2, 64)  # warm-up
        result[name] = round(
            statistics.median(wrk(url + path, method, cookies, seconds, 64) for _ in range(rounds)),
            1,
        )
    return result


def workers(seconds: int, rounds: int) -> dict[str, Any]:
    results = {}
    with tempfile.TemporaryDirectory(prefix="sf-scale-") as tmp:
        redis = RedisServer(Path(tmp))
        try:
            for count in (1, 2):
                env = {
                    "SESSIONFLEET_REDIS_URL": redis.url,
                    "SESSIONFLEET_LOADTEST_USERS": "1000",
                    "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
                    "SESSIONFLEET_LOG_LEVEL": "WARNING",
                }
                app = AppServer(Path(tmp), env, name=f"w{count}", workers=count)
                try:
                    cookies = seed(app.url, LOAD_PASSWORD, 256, Path(tmp) / f"w{count}.cookies")
                    results[f"{count} worker(s)"] = measure(app.url, cookies, seconds, rounds)
                finally:
                    app.stop()
        finally:
            redis.stop()
    return results


def replicas(seconds: int, rounds: int) -> dict[str, Any]:
    results = {}
    for count in (1, 2, 3):
        with tempfile.TemporaryDirectory(prefix="sf-scale-") as tmp:
            cluster = HACluster(
                Path(tmp), app_replicas=count, app_env={"SESSIONFLEET_LOG_LEVEL": "WARNING"}
            )
            try:
                cluster.start()
                cookies = seed(cluster.url, LOAD_PASSWORD, 200, Path(tmp) / "cookies")
                results[f"{count} replica(s)"] = measure(cluster.url, cookies, seconds, rounds)
            finally:
                cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.json"))
    args = parser.parse_args()
    report = {
        "one replica, gunicorn workers (standalone Redis, no WAIT)": workers(
            args.seconds, args.rounds
        ),
        "fleet behind HAProxy (Sentinel, WAIT 1 replica, 1 worker each)": replicas(
            args.seconds, args.rounds
        ),
        "setup": {
            "connections": 64,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "note": "2 CPUs shared by wrk, Redis, Sentinels, HAProxy and the app processes",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
