"""The app on a real Redis Cluster (3 shards x 1 replica of `redis-server --cluster-enabled yes`
on loopback) under what breaks one: a shard's master killed, a slot migrated while it is
written, a master that goes on taking writes after the cluster replaced it, a shard whose
replica is gone. The promise is the Sentinel path's: no acknowledged write lost, a fast 503
(with Retry-After) when a write cannot be made durable, nothing else refused."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.sessions import store_key_of
from harness.redis_cluster import ClusterNode, RedisCluster, wait_for_master
from tests.conftest import login, make_settings

pytestmark = [pytest.mark.redis_cluster, pytest.mark.slow]

COOKIE = "__Host-sid"
WRITE_DEADLINE = 1.0  # seconds a request may spend on Redis: the failover is longer


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A cluster of the test's own: these tests break it."""
    cluster = RedisCluster(tmp_path / "cluster")
    yield cluster
    cluster.stop()


def session_key(client: httpx.AsyncClient) -> str:
    return f"sf:{{{store_key_of(client.cookies[COOKIE])}}}:s"


async def clients_on_every_shard(
    cluster: RedisCluster, client_for: Callable[..., Any], per_shard: int = 2, **settings: Any
) -> dict[int, list[httpx.AsyncClient]]:
    """Logged-in clients of one app, grouped by the port of their session's shard master."""
    first = await client_for(
        make_settings(
            redis_cluster_nodes=cluster.startup_nodes, store_deadline=WRITE_DEADLINE, **settings
        )
    )
    by_master: dict[int, list[httpx.AsyncClient]] = {m.port: [] for m, _ in cluster.shards()}
    for _ in range(200):  # sessions land on a shard at random: log in until each has some
        if all(len(c) >= per_shard for c in by_master.values()):
            return by_master
        client = httpx.AsyncClient(transport=first._transport, base_url=first.base_url)
        await login(client)
        master, _ = cluster.shard_of(session_key(client))
        by_master[master.port].append(client)
    raise AssertionError("200 logins never spread over every shard")


class Writer:
    """Increments each client's counter in turn until stopped (bounded: `limit` requests and
    `seconds`),
    keeping the last value each client had acknowledged; anything but 200 or a 503 with
    Retry-After fails the test."""

    def __init__(
        self, clients: list[httpx.AsyncClient], limit: int = 50_000, seconds: float = 90
    ) -> None:
        self.clients = clients
        self.limit = limit
        self.until = time.monotonic() + seconds
        self.acked: dict[int, int] = {}
        self.refused = 0
        self.sent = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _run(self, i: int, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set() and self.sent < self.limit and time.monotonic() < self.until:
            self.sent += 1
            response = await client.post("/counter")
            if response.status_code == 200:
                value = response.json()["counter"]
                assert value > self.acked.get(i, 0), "an acknowledged increment went missing"
                self.acked[i] = value
            else:
                assert response.status_code == 503, response.text
                assert response.headers.get("retry-after"), "a 503 says when to retry"
                self.refused += 1
                await asyncio.sleep(0.05)  # what a client told Retry-After does, shortened

    def start(self) -> None:
        runs = [self._run(i, c) for i, c in enumerate(self.clients)]
        self._task = asyncio.ensure_future(asyncio.gather(*runs))

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task

    async def until_acked(self, count: int, timeout: float = 20) -> None:
        """Until `count` more increments were acknowledged (the writes go on meanwhile)."""
        target = sum(self.acked.values()) + count
        deadline = time.monotonic() + timeout
        while sum(self.acked.values()) < target:
            assert time.monotonic() < deadline, f"writes did not resume within {timeout}s"
            assert self._task is not None and not self._task.done(), self._task
            await asyncio.sleep(0.02)

    async def check_nothing_lost(self) -> None:
        """Each counter holds at least what was acknowledged (one more increment reads it)."""
        for i, client in enumerate(self.clients):
            response = await client.post("/counter")
            assert response.status_code == 200, response.text
            assert response.json()["counter"] - 1 >= self.acked.get(i, 0), f"client {i} lost"


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Blocking harness calls (process signals, polls) off the loop the app runs on."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_no_acknowledged_write_is_lost_when_each_shard_master_dies(
    own_cluster: RedisCluster, client_for: Callable[..., Any]
) -> None:
    by_master = await clients_on_every_shard(own_cluster, client_for)
    everyone = [c for clients in by_master.values() for c in clients]
    writer = Writer(everyone)
    writer.start()
    try:
        for master, replicas in own_cluster.shards():
            await writer.until_acked(10)
            await in_thread(own_cluster.kill, master)
            await in_thread(wait_for_master, own_cluster, replicas)
            await in_thread(own_cluster.restart, master)  # rejoins, as the new master's replica
            await in_thread(own_cluster.wait_healthy)
            await writer.until_acked(10)  # every shard takes writes again
    finally:
        await writer.stop()
    await writer.check_nothing_lost()
    assert writer.refused > 0, "a failover no request waited for proves nothing"


async def test_a_slot_migrated_under_writes_is_followed_through_ask_and_moved(
    own_cluster: RedisCluster, client_for: Callable[..., Any]
) -> None:
    by_master = await clients_on_every_shard(own_cluster, client_for)
    moving, *others = (c for clients in by_master.values() for c in clients)
    key = session_key(moving)
    slot = own_cluster.slot_of(key)
    source, _ = own_cluster.shard_of(key)
    target = next(m for m, _ in own_cluster.shards() if m.port != source.port)
    ids = {n.port: n.client().execute_command("CLUSTER", "MYID").decode() for n in (source, target)}
    writer = Writer(others)  # the other shards' traffic goes on throughout
    writer.start()
    counts = []

    async def increment() -> None:
        response = await moving.post("/counter")
        assert response.status_code == 200, response.text
        counts.append(response.json()["counter"])

    try:
        await increment()
        target.client().execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source.port])
        source.client().execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
        await increment()  # the key is still on the source: it answers
        source.client().migrate("127.0.0.1", target.port, key, 0, 5000)
        assert _keys_in(source, slot) == 0 and _keys_in(target, slot) == 1
        await increment()  # the source answers ASK: ASKING + the command, on the target
        asking = target.client().pipeline(transaction=False)
        _, stored = asking.execute_command("ASKING").hget(key, "counter").execute()
        assert stored.partition(b":")[2] == b"3"  # written there, not on the source
        for node in (target, source):
            node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])
        await increment()  # the source answers MOVED: the slot's new owner, from now on
        await increment()
    finally:
        await writer.stop()
    assert counts == [1, 2, 3, 4, 5]
    assert writer.refused == 0, "nothing else was refused while one slot moved"
    await writer.check_nothing_lost()


async def test_a_master_the_cluster_replaced_acknowledges_nothing_it_would_lose(
    own_cluster: RedisCluster, client_for: Callable[..., Any]
) -> None:
    """A partition's minority side, on loopback: the shard's master is frozen while its
    replica takes over (CLUSTER FAILOVER TAKEOVER: what the majority does when it cannot
    reach the master), then thaws with writes queued to it, still taking itself for the
    master until gossip tells it otherwise. What it takes then, its replica no longer
    acknowledges, and it is erased when it rejoins as a replica: none of it may have been
    answered 200."""
    by_master = await clients_on_every_shard(own_cluster, client_for, per_shard=3)
    master, replicas = own_cluster.shards()[0]
    writer = Writer(by_master[master.port])
    writer.start()
    try:
        await writer.until_acked(10)
        master.server.proc.signal(signal.SIGSTOP)
        await asyncio.sleep(0.3)  # requests pile up in the frozen master's socket
        replicas[0].client().execute_command("CLUSTER", "FAILOVER", "TAKEOVER")
        await in_thread(_wait_role, replicas[0], "master")
        master.server.proc.signal(signal.SIGCONT)
        await in_thread(_wait_role, master, "slave")
        await in_thread(own_cluster.wait_healthy)
        await writer.until_acked(10)
    finally:
        master.server.proc.signal(signal.SIGCONT)
        await writer.stop()
    await writer.check_nothing_lost()


async def test_a_shard_without_its_replica_refuses_writes_fast_and_nothing_else(
    own_cluster: RedisCluster, client_for: Callable[..., Any]
) -> None:
    by_master = await clients_on_every_shard(own_cluster, client_for, per_shard=1)
    master, replicas = own_cluster.shards()[0]
    [stranded] = by_master[master.port][:1]
    elsewhere = [c for port, cs in by_master.items() if port != master.port for c in cs]
    replicas[0].server.proc.signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        refused = await stranded.post("/counter")
        took = time.monotonic() - started
        assert refused.status_code == 503 and refused.headers.get("retry-after"), refused.text
        assert took < WRITE_DEADLINE + 1.0, f"the refusal took {took:.2f}s"
        assert (await stranded.get("/me")).status_code == 200  # reads go on
        for client in elsewhere:
            assert (await client.post("/counter")).status_code == 200
    finally:
        replicas[0].server.proc.signal(signal.SIGCONT)
    await in_thread(own_cluster.wait_healthy)
    assert (await stranded.post("/counter")).status_code == 200


def _keys_in(node: ClusterNode, slot: int) -> int:
    return int(node.client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))


def _wait_role(node: ClusterNode, role: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError):  # thawing: not answering yet
            if node.client().info("replication")["role"] == role:
                return
        time.sleep(0.02)
    raise TimeoutError(f"node {node.port} did not become {role} within {timeout}s")
