"""Session cost per request, side by side, in one run on this machine.

Every variant of `benchmarks/session_apps.py` is served by one uvicorn worker pinned to CPU 0;
wrk (and Redis) run on CPU 1. Rounds are interleaved (each round visits every variant in a
rotated order); ratios to the no-session ceiling (and to starsessions) are taken within each
round and their median reported, with median req/s, p50/p99 latency and Redis commands per
request. Requests spread over many sessions (one cookie per
request from a pool, see wrk_sessions.lua), as real traffic does.

    python -m benchmarks.sessions_bench --rounds 10 --seconds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import redis

from benchmarks.session_apps import session_cookie
from harness.processes import ROOT, Proc, ReplicatedRedis, free_port, port_open, wait_until

VARIANTS = ["none", "starlette", "starsessions", "ours-memory", "ours-redis", "ours-app"]
ENDPOINTS = {"read+write": ("POST", "/counter"), "read": ("GET", "/me")}
PASSWORD = "bench-password"  # noqa: S105 (a throwaway user of the benchmark app)
LUA = ROOT / "benchmarks" / "wrk_sessions.lua"
GC_SETTINGS = {
    "server": "startup heap frozen, first-generation threshold 10,000 (app/ops/gc_tuning.py)",
    "default": "CPython's defaults (threshold 700, nothing frozen)",
}


def pinned(cpu: int, args: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *args] if shutil.which("taskset") else args


class Bench:
    def __init__(
        self,
        workdir: Path,
        connections: int,
        sessions: int,
        variants: list[str],
        gc: str = "server",
    ) -> None:
        self.workdir = workdir
        self.gc = gc
        self.variants = variants
        self.connections = connections
        self.sessions = sessions
        self.procs: list[Proc] = []
        self.ports: dict[str, int] = {}
        self.cookie_files: dict[str, Path] = {}

    def start(self) -> None:
        # Master, replica and Sentinel on wrk's CPU: the production app's commits wait for the
        # replica's acknowledgement and ask the Sentinel, as they do behind Sentinel.
        self.fleet = ReplicatedRedis(self.workdir / "redis", cpu=1)
        self.redis_port = self.fleet.master.port
        self.redis_url = self.fleet.master.url
        self.redis = redis.Redis(port=self.redis_port)
        # Marks the end of a MONITOR count; connected now, so its handshake is not counted.
        self.marker = redis.Redis(port=self.redis_port, single_connection_client=True)
        self.marker.ping()
        for variant in self.variants:
            port = free_port()
            env = {
                "BENCH_VARIANT": variant,
                "BENCH_REDIS_URL": self.redis_url,
                "BENCH_PASSWORD": PASSWORD,
                "BENCH_GC": self.gc,
                "BENCH_SENTINELS": self.fleet.sentinels,
                "SESSIONFLEET_LOG_LEVEL": "WARNING",
            }
            args = [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "benchmarks.session_apps:from_env",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
                "--loop",
                "uvloop",
                "--http",
                "httptools",
            ]
            self.procs.append(Proc(pinned(0, args), self.workdir / f"{variant}.log", env))
            wait_until(lambda p=port: port_open(p), 30, variant)
            self.ports[variant] = port
            self.cookie_files[variant] = self._seed(variant, port)

    def _seed(self, variant: str, port: int) -> Path:
        """Log in `sessions` times; keep each session's Cookie header value."""
        lines = []
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for n in range(1, self.sessions + 1):
                client.cookies.clear()
                body = {"username": f"user-{n:04d}", "password": PASSWORD}
                response = client.post("/login", json=body)
                response.raise_for_status()
                lines.append(session_cookie(response.headers.get_list("set-cookie")))
        path = self.workdir / f"{variant}.cookies"
        path.write_text("\n".join(lines) + "\n")
        return path

    def commands_per_request(self, variant: str, endpoint: str, requests: int = 50) -> float:
        """Commands the app sends Redis per request (round trips, script internals not
        counted), from MONITOR while `requests` requests run one after another."""
        method, path = ENDPOINTS[endpoint]
        cookies = self.cookie_files[variant].read_text().split()
        with httpx.Client(base_url=f"http://127.0.0.1:{self.ports[variant]}") as client:
            # One request first: a script's first call on a server is EVALSHA, NOSCRIPT, EVAL.
            client.request(method, path, headers={"cookie": cookies[-1]})
            with self.redis.monitor() as monitor:
                count = self._count_commands(monitor, client, method, path, cookies, requests)
        return round(count / requests, 2)

    def _count_commands(
        self,
        monitor: Any,
        client: httpx.Client,
        method: str,
        path: str,
        cookies: list[str],
        requests: int,
    ) -> int:
        for i in range(requests):
            client.request(method, path, headers={"cookie": cookies[i % len(cookies)]})
        self.marker.set("bench:end", 1)
        count = 0
        for command in monitor.listen():
            if command["command"] == "SET bench:end 1":
                break
            if command["client_type"] != "lua" and not command["command"].startswith("PING"):
                count += 1
        return count

    def wrk(self, variant: str, endpoint: str, seconds: int) -> dict[str, float]:
        method, path = ENDPOINTS[endpoint]
        env = {**os.environ, "WRK_COOKIES": str(self.cookie_files[variant]), "WRK_METHOD": method}
        out = subprocess.run(  # noqa: S603 (fixed program)
            pinned(
                1,
                [
                    "wrk",
                    "-t1",
                    f"-c{self.connections}",
                    f"-d{seconds}s",
                    "--latency",
                    "-s",
                    str(LUA),
                    f"http://127.0.0.1:{self.ports[variant]}{path}",
                ],
            ),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        ).stdout
        bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        if bad:
            raise RuntimeError(f"{variant} {endpoint}: {bad[1]} non-2xx answers:\n{out}")
        return {
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),  # type: ignore[index]
            "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out)[1]),  # type: ignore[index]
            "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out)[1]),  # type: ignore[index]
        }

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.fleet.stop()


def _paired_ratio(runs: list[dict[str, float]], base: list[dict[str, float]], digits: int) -> float:
    return round(
        statistics.median(r["rps"] / b["rps"] for r, b in zip(runs, base, strict=True)), digits
    )


def _ms(text: str) -> float:
    value, unit = float(re.match(r"[\d.]+", text)[0]), re.sub(r"[\d.]+", "", text)  # type: ignore[index]
    return round(value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit], 3)


def run(
    rounds: int, seconds: int, connections: int, sessions: int, variants: list[str], gc: str
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp:
        bench = Bench(Path(tmp), connections, sessions, variants, gc)
        try:
            bench.start()
            # Counted first, while every app is idle: after a wrk run an app may still be
            # finishing queued requests, whose commands MONITOR would count for the next one.
            commands = {
                v: {e: bench.commands_per_request(v, e) for e in ENDPOINTS} for v in variants
            }
            for variant in variants:  # warm-up: imports, JIT-free but caches and pools
                for endpoint in ENDPOINTS:
                    bench.wrk(variant, endpoint, 2)
            samples: dict[str, dict[str, list[dict[str, float]]]] = {
                v: {e: [] for e in ENDPOINTS} for v in variants
            }
            for round_no in range(rounds):
                turn = round_no % len(variants)
                order = variants[turn:] + variants[:turn]
                for variant in order:
                    for endpoint in ENDPOINTS:
                        samples[variant][endpoint].append(bench.wrk(variant, endpoint, seconds))
                print(f"round {round_no + 1}/{rounds} done", flush=True)
        finally:
            bench.stop()
    report = summarize(samples, commands, rounds, seconds, connections, sessions)
    report["setup"]["gc"] = GC_SETTINGS[gc]
    return report


def summarize(
    samples: dict[str, dict[str, list[dict[str, float]]]],
    commands: dict[str, dict[str, float]],
    rounds: int,
    seconds: int,
    connections: int,
    sessions: int,
) -> dict[str, Any]:
    table: dict[str, dict[str, dict[str, float]]] = {}
    for variant, endpoints in samples.items():
        table[variant] = {}
        for endpoint, runs in endpoints.items():
            table[variant][endpoint] = {
                key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]
            }
            table[variant][endpoint]["redis_commands_per_request"] = commands[variant][endpoint]
    # Ratios are taken within each round, then the median: the shared VM's speed drifts over
    # tens of seconds, so runs of one round (seconds apart) compare far better than medians
    # taken over the whole benchmark.
    for variant in table:
        for endpoint in ENDPOINTS:
            runs = samples[variant][endpoint]
            table[variant][endpoint]["ratio_to_ceiling"] = _paired_ratio(
                runs, samples["none"][endpoint], 3
            )
            table[variant][endpoint]["vs_starsessions"] = _paired_ratio(
                runs, samples["starsessions"][endpoint], 2
            )
    return {
        "table": table,
        "samples": samples,
        "setup": {
            "rounds": rounds,
            "seconds": seconds,
            "connections": connections,
            "sessions": sessions,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "server": "uvicorn, 1 worker, uvloop + httptools, pinned to CPU 0",
            "load": "wrk -t1 pinned to CPU 1 (with redis-server)",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sessions", type=int, default=256)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated subset (the ceiling 'none' and 'starsessions' are always run)",
    )
    parser.add_argument(
        "--gc",
        choices=sorted(GC_SETTINGS),
        default="server",
        help="garbage-collector settings of every app (default: the production app's)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sessions.json"))
    args = parser.parse_args()
    chosen = set(args.variants.split(",")) | {"none", "starsessions"}
    variants = [v for v in VARIANTS if v in chosen]
    report = run(args.rounds, args.seconds, args.connections, args.sessions, variants, args.gc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for variant, endpoints in report["table"].items():
        print(
            variant.ljust(14),
            "  ".join(
                f"{e}: {v['rps']:>7.0f} rps x{v['ratio_to_ceiling']:.2f} p99 {v['p99_ms']}ms "
                f"cmds/req {v['redis_commands_per_request']}"
                for e, v in endpoints.items()
            ),
        )


if __name__ == "__main__":
    main()
