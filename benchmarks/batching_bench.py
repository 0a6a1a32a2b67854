"""The store's load + commit, end to end, over its pipelined connection (`CommandBatcher`:
hiredis + one `asyncio.Protocol`) against the same store over an equivalent batching built on
redis-py (the calls of one event-loop iteration sent as one redis-py pipeline, with the same
shared WAIT and a deadline timer per batch), in the same run, against the same master,
replica and Sentinel (`harness.processes.ReplicatedRedis`).

Each round runs both, alternating which goes first: CPU time of this process per store call
(a load or a commit; Redis's own CPU is not counted) and calls per second of wall time, with
32 concurrent tasks each loading and updating its own session. Ratios are taken within each
round (the machine's speed drifts between rounds) and their median reported.

    taskset -c 0 python -m benchmarks.batching_bench --pairs 4000 --rounds 7
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import uvloop
from redis.asyncio import Redis

from app.ops.gc_tuning import restore, tune_for_serving
from app.sessions import (
    Ack,
    CommitRequest,
    Limits,
    RedisConnection,
    RedisOptions,
    RedisSessionStore,
    connect,
)
from harness.processes import ReplicatedRedis

CONCURRENCY = 32
LIMITS = Limits(idle_ms=1_800_000, lifetime_ms=43_200_000, max_bytes=16384)
VARIANTS = ("CommandBatcher", "redis-py pipeline")


class RedisPyBatcher:
    """`CommandBatcher.call`'s contract over redis-py: the calls queued in one event-loop
    iteration go out as one pipeline (no MULTI), closed by one WAIT and ROLE if any asked
    for an acknowledgement;
    replies (error replies as exception objects) go to their callers; one timer per batch
    fails the calls still waiting at the earliest deadline. For this benchmark only."""

    def __init__(self, client: Redis, master_address: Callable[[], Awaitable[Any]]) -> None:
        self.client = client
        self.master_address = master_address
        self.address: tuple[str, int] | None = None
        self._pending: list[tuple[tuple[Any, ...], Any, asyncio.Future[Any], float | None]] = []
        self._scheduled = False

    def call(
        self, *args: Any, wait: tuple[int, int] | None = None, deadline: float | None = None
    ) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((args, wait, future, deadline))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._pending = self._pending, []
        deadlines = [d for _, _, _, d in batch if d is not None]
        if deadlines:
            loop = asyncio.get_running_loop()
            timer = loop.call_at(
                loop.time() + min(deadlines) - time.monotonic(), self._expire, batch
            )
        else:
            timer = None
        self._running = asyncio.ensure_future(self._run(batch, timer))

    @staticmethod
    def _expire(batch: list[Any]) -> None:
        for _, _, future, _ in batch:
            if not future.done():
                future.set_exception(TimeoutError("no reply from Redis by the deadline"))

    async def _run(self, batch: list[Any], timer: asyncio.TimerHandle | None) -> None:
        if self.address is None:
            self.address = await self.master_address()
        waits = [wait for _, wait, _, _ in batch if wait is not None]
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for args, _, _, _ in batch:
                    pipe.execute_command(*args)
                if waits:
                    replicas = max(r for _, r in waits)
                    pipe.execute_command("WAIT", replicas, min(ms for ms, _ in waits))
                    pipe.execute_command("ROLE")
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            for _, _, future, _ in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            if timer is not None:
                timer.cancel()
        acked = Ack.of(replies[-2], replies[-1]) if waits else None
        for (_, wait, future, _), reply in zip(batch, replies, strict=False):
            if not future.done():
                future.set_result((reply, acked if wait is not None else None))

    def reconnect(self) -> None:
        self.address = None

    async def close(self) -> None:
        await self.client.aclose()


def _store(
    fleet: ReplicatedRedis, variant: str, durable: bool
) -> tuple[RedisSessionStore, RedisConnection]:
    options = RedisOptions(sentinels=[("127.0.0.1", fleet.sentinel_port)])
    connection = connect(options)
    if variant != VARIANTS[0]:
        assert connection.census is not None
        census = connection.census

        async def master() -> tuple[str, int]:
            answer = await census()
            assert answer is not None
            return answer.master

        client = Redis(
            port=fleet.master.port, socket_timeout=options.socket_timeout, max_connections=64
        )
        commands: Any = RedisPyBatcher(client, master)
        connection = RedisConnection(
            connection.client, census, commands, [commands.close, *connection.closers]
        )
    store = RedisSessionStore(
        connection, LIMITS, wait_replicas=1 if durable else 0, wait_timeout_ms=1000, deadline=3.0
    )
    return store, connection


async def _run(
    stores: dict[str, RedisSessionStore], pairs: int, rounds: int, durable: bool
) -> dict[str, list[tuple[float, float]]]:
    """Per variant, per round: (CPU µs per store call, store calls per second)."""
    for name, store in stores.items():
        for worker in range(CONCURRENCY):
            request = CommitRequest(f"c{worker}", create=True, sets={"n": (0, b"0")})
            await store.commit(f"{name[:3]}-{durable}-{worker}", request)

    async def worker(name: str, store: RedisSessionStore, i: int, round_no: int) -> None:
        key = f"{name[:3]}-{durable}-{i}"
        for j in range(pairs // CONCURRENCY):
            stored = await store.load(key)
            assert stored is not None
            version = stored.fields["n"][0]
            token = f"r{round_no}-{i}-{j}"
            request = CommitRequest(
                token, create=False, sets={"n": (version, str(j).encode())}, durable=durable
            )
            result = await store.commit(key, request)
            assert result.ok, result

    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
    for round_no in range(rounds + 1):  # the first round warms up
        order = list(stores) if round_no % 2 else list(reversed(stores))
        for name in order:
            store = stores[name]
            cpu, wall = time.process_time(), time.perf_counter()
            await asyncio.gather(*(worker(name, store, i, round_no) for i in range(CONCURRENCY)))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            calls = 2 * CONCURRENCY * (pairs // CONCURRENCY)
            if round_no:
                samples[name].append((cpu / calls * 1e6, calls / wall))
    return samples


async def _measure(fleet: ReplicatedRedis, pairs: int, rounds: int, durable: bool) -> str:
    made = {variant: _store(fleet, variant, durable) for variant in VARIANTS}
    stores = {variant: store for variant, (store, _) in made.items()}
    gc_thresholds = tune_for_serving()  # as a serving worker runs
    try:
        samples = await _run(stores, pairs, rounds, durable)
    finally:
        restore(gc_thresholds)
        for store, connection in made.values():
            await store.close()
            await connection.close()
    ours, theirs = (samples[v] for v in VARIANTS)
    cpu_ratio = statistics.median(t[0] / o[0] for o, t in zip(ours, theirs, strict=True))
    rate_ratio = statistics.median(o[1] / t[1] for o, t in zip(ours, theirs, strict=True))
    mode = "durable (WAIT 1 + census)" if durable else "not durable"
    lines = [f"load + commit, {mode}: {rounds} rounds of {pairs} pairs, medians"]
    for variant in VARIANTS:
        cpu = statistics.median(s[0] for s in samples[variant])
        rate = statistics.median(s[1] for s in samples[variant])
        lines.append(f"  {variant:<18} {cpu:7.1f} µs CPU per call  {rate:8.0f} calls/s")
    lines.append(
        f"  redis-py / CommandBatcher CPU per call: x{cpu_ratio:.2f}; "
        f"CommandBatcher / redis-py calls/s: x{rate_ratio:.2f} (paired per round)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4000, help="load+commit pairs per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--modes", default="plain,durable", help="plain, durable or both")
    parser.add_argument("--redis-cpu", type=int, default=1, help="pin Redis to this CPU")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sf-batching-") as tmp:
        fleet = ReplicatedRedis(Path(tmp), cpu=args.redis_cpu)
        try:
            for mode in args.modes.split(","):
                report = uvloop.run(_measure(fleet, args.pairs, args.rounds, mode == "durable"))
                print(report, flush=True)
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
