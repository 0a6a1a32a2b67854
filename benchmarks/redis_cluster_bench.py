"""Sessions on Redis Cluster: what one session operation costs Redis, what the app fleet
carries with 1 and 3 shards on this machine (and, on paper, with N), and how long a shard's
writes stop when its master dies.

    python -m benchmarks.redis_cluster_bench --ops 4000 --seconds 5 --rounds 3 --kills 5

1. Redis-side cost: each session operation (login = index entry + session, both durable;
   load; durable update; logout = delete + index removal) N times through the store, from
   one process; the masters' CPU (`used_cpu_user + used_cpu_sys`) and commands
   (`INFO commandstats`) before and after, per operation. A Redis master runs commands on one
   core: 1 s over the CPU per operation is what one shard can carry at most.
2. The fleet: one app (gunicorn, 2 workers) on a plain master + replica (the baseline), on a
   cluster of 1 shard and of 3 shards, the same wrk load (`POST /counter`, `GET /me` over
   256 sessions), as ratios to the baseline within each round. On 2 CPUs the app is the
   bottleneck, not Redis: the projection (docs/benchmarks.md) says where the shards would be.
3. The failover window: writers on one shard's sessions, its master SIGKILLed (restarted once
   its replica took over); the time from the kill until a commit started after it is
   acknowledged, with 1 and 2 replicas per shard (cluster-node-timeout 1 s here; the chart's
   default is 5 s: the window grows with it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.sessions import (
    CommitRequest,
    Limits,
    NotDurable,
    RedisConnection,
    RedisOptions,
    RedisSessionStore,
    StoreUnavailable,
    connect,
    new_session_id,
    store_key_of,
)
from benchmarks.scaling import ENDPOINTS, seed, wrk
from harness.ha_cluster import LOAD_PASSWORD
from harness.processes import AppServer, RedisServer
from harness.redis_cluster import NODE_TIMEOUT_MS, RedisCluster, wait_for_master

LIMITS = Limits(idle_ms=600_000, lifetime_ms=3_600_000, max_bytes=16_384)
CONCURRENCY = 32  # operations in flight at once (a busy app process)


def _store(cluster: RedisCluster) -> tuple[RedisSessionStore, RedisConnection]:
    connection = connect(RedisOptions(cluster_nodes=[cluster.nodes[0].address]))
    store = RedisSessionStore(
        connection, LIMITS, wait_replicas=1, wait_timeout_ms=1000, deadline=3.0
    )
    return store, connection


def _redis_usage(cluster: RedisCluster) -> tuple[float, int]:
    """CPU seconds the masters used so far, and the commands they ran."""
    cpu, calls = 0.0, 0
    for master, _ in cluster.shards():
        client = master.client()
        info = client.info("cpu")
        cpu += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        calls += sum(int(v["calls"]) for v in client.info("commandstats").values())
    return cpu, calls


async def _in_waves(ops: list[Callable[[], Awaitable[Any]]]) -> None:
    for i in range(0, len(ops), CONCURRENCY):
        await asyncio.gather(*(op() for op in ops[i : i + CONCURRENCY]))


async def redis_cost(cluster: RedisCluster, n: int) -> dict[str, dict[str, float]]:
    store, connection = _store(cluster)
    keys = [store_key_of(new_session_id()) for _ in range(n)]
    users = [f"user-{i:05d}" for i in range(n)]
    body = b'{"counter":1}'

    def login(i: int) -> Callable[[], Awaitable[Any]]:
        async def op() -> None:
            await store.index_add(users[i], keys[i], int(time.time() * 1000) + 3_600_000, 20)
            await store.commit(keys[i], CommitRequest(f"t{i}", True, {"counter": (0, body)}))

        return op

    def load(i: int) -> Callable[[], Awaitable[Any]]:
        return lambda: store.load(keys[i])

    def update(i: int) -> Callable[[], Awaitable[Any]]:
        async def op() -> None:
            stored = await store.load(keys[i])
            assert stored is not None
            version = stored.fields["counter"][0]
            request = CommitRequest(f"u{i}", False, {"counter": (version, b'{"counter":2}')})
            await store.commit(keys[i], request)

        return op

    def logout(i: int) -> Callable[[], Awaitable[Any]]:
        async def op() -> None:
            await store.delete([keys[i]])
            await store.index_remove(users[i], [keys[i]])

        return op

    result = {}
    try:
        await _in_waves([load(0)] * CONCURRENCY)  # connected, scripts loaded, map known
        operations = {"login": login, "load": load, "update": update, "logout": logout}
        for name, make in operations.items():
            cpu0, calls0 = _redis_usage(cluster)
            started = time.perf_counter()
            await _in_waves([make(i) for i in range(n)])
            elapsed = time.perf_counter() - started
            cpu1, calls1 = _redis_usage(cluster)
            # INFO itself is counted in commandstats: 2 per master per reading.
            info_calls = 2 * len(cluster.shards())
            result[name] = {
                "redis_cpu_us_per_op": round((cpu1 - cpu0) / n * 1e6, 1),
                "redis_commands_per_op": round((calls1 - calls0 - info_calls) / n, 2),
                "client_ops_per_s": round(n / elapsed),
            }
    finally:
        await connection.close()
    return result


def fleet(seconds: int, rounds: int) -> dict[str, Any]:
    """The same app on a plain master + replica (the baseline: no cluster), on a 1-shard and
    on a 3-shard cluster, all up at once and measured in interleaved rounds: each round's
    req/s are divided by the baseline's of the same round (this VM's speed drifts)."""
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sf-cluster-bench-")))
        master = RedisServer(tmp / "master")
        stack.callback(master.stop)
        replica = RedisServer(tmp / "replica", None, "--replicaof", "127.0.0.1", str(master.port))
        stack.callback(replica.stop)
        backends = {"baseline": {"SESSIONFLEET_REDIS_URL": master.url}}
        for shards in (1, 3):
            cluster = RedisCluster(tmp / f"cluster-{shards}", shards=shards)
            stack.callback(cluster.stop)
            nodes = {"SESSIONFLEET_REDIS_CLUSTER_NODES": cluster.startup_nodes}
            backends[f"{shards} shard(s)"] = nodes
        apps, cookies = {}, {}
        for name, backend in backends.items():
            env = backend | {
                "SESSIONFLEET_REDIS_WAIT_REPLICAS": "1",
                "SESSIONFLEET_LOADTEST_USERS": "1000",
                "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
                "SESSIONFLEET_LOG_LEVEL": "WARNING",
            }
            apps[name] = AppServer(tmp, env, name=name.split()[0], workers=2)
            stack.callback(apps[name].stop)
            cookies[name] = seed(apps[name].url, LOAD_PASSWORD, 256, tmp / f"{name[0]}.cookies")
        runs: dict[str, dict[str, list[float]]] = {n: {e: [] for e in ENDPOINTS} for n in apps}
        for endpoint, (method, path) in ENDPOINTS.items():
            for name, app in apps.items():
                wrk(app.url + path, method, cookies[name], 2, 64)  # warm-up
            for _ in range(rounds):
                for name, app in apps.items():
                    rps = wrk(app.url + path, method, cookies[name], seconds, 64)
                    runs[name][endpoint].append(rps)
    table: dict[str, Any] = {}
    for name, by_endpoint in runs.items():
        table[name] = {}
        for endpoint, values in by_endpoint.items():
            base = runs["baseline"][endpoint]
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            table[name][endpoint] = {
                "rps": round(statistics.median(values)),
                "ratio_to_baseline": round(statistics.median(ratios), 2),
            }
    return table


async def failover_windows(kills: int, replicas: int) -> list[float]:
    windows = []
    with tempfile.TemporaryDirectory(prefix="sf-cluster-failover-") as tmp:
        cluster = RedisCluster(Path(tmp), replicas=replicas)
        try:
            for _ in range(kills):
                windows.append(await _one_failover(cluster))
        finally:
            cluster.stop()
    return windows


async def _one_failover(cluster: RedisCluster) -> float:
    """Seconds from a shard master's SIGKILL until a commit started after it is acknowledged.
    With one replica per shard the promoted replica has none left: writes wait for the killed
    node, restarted as soon as its replica took over (a pod's restart), to rejoin as its
    replica. With two, the other replica acknowledges at once."""
    master, replicas = cluster.shards()[0]
    store, connection = _store(cluster)
    keys: list[str] = []
    while len(keys) < 8:  # sessions on the shard about to lose its master
        key = store_key_of(new_session_id())
        if cluster.shard_of(f"sf:{{{key}}}:s")[0].port == master.port:
            keys.append(key)
    for key in keys:
        await store.commit(key, CommitRequest("c", True, {"n": (0, b"0")}))
    killed_at: float | None = None
    recovered: list[float] = []

    async def writer(key: str) -> None:
        n = 0
        while not recovered:
            n += 1
            started = time.monotonic()
            try:
                stored = await store.load(key)
                assert stored is not None, "a session went missing"
                version = stored.fields["n"][0]
                request = CommitRequest(f"{key}-{n}", False, {"n": (version, str(n).encode())})
                await store.commit(key, request)
            except (NotDurable, StoreUnavailable):
                await asyncio.sleep(0.02)
                continue
            if killed_at is not None and started > killed_at:
                recovered.append(time.monotonic())

    loop = asyncio.get_running_loop()
    writers = [asyncio.ensure_future(writer(key)) for key in keys]
    try:
        await asyncio.sleep(0.5)  # steady writes before the kill
        killed_at = time.monotonic()
        master.server.proc.signal(signal.SIGKILL)
        await loop.run_in_executor(None, wait_for_master, cluster, replicas)
        master.server.proc.popen.wait(5)
        await loop.run_in_executor(None, cluster.restart, master)
        async with asyncio.timeout(30):
            await asyncio.gather(*writers)
    finally:
        for task in writers:
            task.cancel()
        await connection.close()
    await loop.run_in_executor(None, cluster.wait_healthy)
    return round(min(recovered) - killed_at, 3)


def _summary(windows: list[float]) -> dict[str, Any]:
    return {"rounds": windows, "median": round(statistics.median(windows), 3), "max": max(windows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=4000)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/redis_cluster.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="sf-cluster-cost-") as tmp:
        cluster = RedisCluster(Path(tmp))
        try:
            cost = asyncio.run(redis_cost(cluster, args.ops))
        finally:
            cluster.stop()
    throughput = fleet(args.seconds, args.rounds)
    windows = {r: asyncio.run(failover_windows(args.kills, r)) for r in (1, 2)}
    report = {
        "redis_cost_per_operation": cost,
        "fleet_req_per_s": throughput,
        "shard_failover_window_s": {
            "1 replica per shard (writes wait for the killed node to rejoin)": _summary(windows[1]),
            "2 replicas per shard": _summary(windows[2]),
            "cluster_node_timeout_ms": NODE_TIMEOUT_MS,
        },
        "setup": {
            "ops_per_operation": args.ops,
            "concurrency": CONCURRENCY,
            "wrk": f"64 connections, {args.rounds} rounds of {args.seconds} s, 256 sessions",
            "app": "gunicorn, 2 uvicorn workers, durable commits (WAIT every live replica)",
            "cluster": "Real redis-server --cluster-enabled yes processes on loopback, "
            "1 replica per shard (2 for the failover row that says so)",
            "redis": subprocess.run(
                ["redis-server", "--version"],  # noqa: S607
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()[2],
            "cpus": __import__("os").cpu_count(),
            "python": platform.python_version(),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
