"""Where the store's Redis is and how to reach it: a Sentinel-managed master (with the census
of Sentinels that durable commits depend on), a Redis Cluster, or a standalone server, and the
pipelined connection every command of the process takes (one per master). `connect()` does no I/O;
`RedisConnection.close()` closes everything it made."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from .batching import CommandBatcher
from .census import Census, ReplicaCensus, master_named_by
from .cluster import ClusterCommands
from .pipe import Ack

Closer = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)

SENTINEL_TIMEOUT = 0.5  # seconds a Sentinel query may take
# Master flags that mean a failover is decided (o_down) or under way.
FAILOVER_FLAGS = frozenset({"o_down", "failover_in_progress"})
# Replica flags that mean a Sentinel knows it down (it cannot be promoted with our writes).
DOWN_FLAGS = frozenset({"s_down", "o_down", "disconnected"})


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """Sentinels (host, port) and a master name, a Redis Cluster's start-up nodes, or a
    standalone server's URL (the first of these given is used)."""

    url: str | None = None
    sentinels: list[tuple[str, int]] = field(default_factory=list)
    cluster_nodes: list[tuple[str, int]] = field(default_factory=list)
    master_name: str = "sessionfleet"
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None
    tls: bool = False
    tls_ca_file: str | None = None
    socket_timeout: float = 1.0  # a read that takes longer drops the connection
    connect_timeout: float = 0.5
    max_connections: int = 64


@dataclass(slots=True)
class RedisConnection:
    client: Redis  # where and how to connect (its options; it sends nothing itself)
    census: Census | None  # with Sentinel: what durable commits ask before acknowledging
    # The connection to the master (with a cluster: to each master) every command goes over.
    commands: CommandBatcher | ClusterCommands
    closers: list[Closer]

    async def call(self, *args: Any, wait: tuple[int, int] | None = None) -> tuple[Any, Ack | None]:
        """One command, sent with whatever else the process sends in this event-loop
        iteration: (its reply, its batch's `Ack` when `wait` = (budget ms, replicas) is
        given, else None). An error reply is raised (redis-py's exception
        classes); so is a lost connection (`ConnectionError`: retry it). No deadline and no
        retry of its own: wrap it in `with_retry`."""
        reply, ack = await self.commands.call(*args, wait=wait)
        if isinstance(reply, Exception):
            raise reply
        return reply, ack

    async def close(self) -> None:
        for close in self.closers:
            await close()


def _common(options: RedisOptions) -> dict[str, Any]:
    common: dict[str, Any] = {
        "socket_timeout": options.socket_timeout,
        "socket_connect_timeout": options.connect_timeout,
        "health_check_interval": 15,
        # No retries inside redis-py (its default: 3, with backoff from 1 s): the store retries
        # within the request's deadline itself. Left on, one call to a Sentinel or master that
        # vanished without a reset (a lost node) could eat the whole deadline, on every request.
        "retry": Retry(NoBackoff(), 0),
    }
    if options.tls:
        common["ssl"] = True
        if options.tls_ca_file:
            common["ssl_ca_certs"] = options.tls_ca_file
    return common


def _fields(flat: list[bytes]) -> dict[str, str]:
    """A Sentinel reply of alternating names and values, as text."""
    items = iter(value.decode() if isinstance(value, bytes) else str(value) for value in flat)
    return dict(zip(items, items, strict=True))


def sentinel_census(
    sentinels: list[CommandBatcher], master_name: str, census_timeout: float = 1.0
) -> Census:
    """The master a majority of the Sentinels, asked at once, name, and what they say about it
    and its replicas. Only the Sentinel leading a failover flags it, so every one is asked. One
    that failed to answer is still asked but not waited for (its answer counts if it comes in
    time), so a lost node's Sentinel does not cost a timeout on every commit. The queries go
    over the same pipelined connections as the store's commands (one per Sentinel)."""
    failing = [False] * len(sentinels)
    in_flight: list[asyncio.Future[Any] | None] = [None] * len(sentinels)

    async def ask(i: int) -> tuple[dict[str, str], list[dict[str, str]]] | None:
        # Bounded as a whole (connect, AUTH, both replies): a query that hangs would stay the
        # one in flight for this Sentinel, and its answer would never count.
        deadline = time.monotonic() + census_timeout
        master = sentinels[i].call("SENTINEL", "MASTER", master_name, deadline=deadline)
        replicas = sentinels[i].call("SENTINEL", "REPLICAS", master_name, deadline=deadline)
        try:
            (master_reply, _), (replicas_reply, _) = await asyncio.gather(master, replicas)
            if isinstance(master_reply, Exception) or isinstance(replicas_reply, Exception):
                raise master_reply if isinstance(master_reply, Exception) else replicas_reply
            answer = _fields(master_reply), [_fields(r) for r in replicas_reply]
        except (rx.RedisError, OSError, TimeoutError, ValueError, TypeError) as exc:
            if not failing[i]:
                log.warning("sentinel %d stopped answering the census: %r", i, exc)
            failing[i] = True
            # Nothing of that connection is trusted again: the next query connects afresh
            # (and looks the name up again: a restarted Sentinel may have a new address).
            sentinels[i].reconnect()
            return None
        if failing[i]:
            log.warning("sentinel %d answers the census again", i)
        failing[i] = False
        return answer

    def asked(i: int) -> asyncio.Future[Any]:
        task = in_flight[i]
        if task is None or task.done():  # one query per Sentinel at a time
            task = in_flight[i] = asyncio.ensure_future(ask(i))
        return task

    async def census() -> ReplicaCensus | None:
        tasks = [asked(i) for i in range(len(sentinels))]
        awaited = [t for i, t in enumerate(tasks) if not failing[i]]
        if awaited:
            await asyncio.wait(awaited)
        replies = [t.result() if t.done() else None for t in tasks]
        named = [((m["ip"], int(m["port"])), m, r) for m, r in filter(None, replies)]
        majority = len(sentinels) // 2 + 1
        votes = Counter(address for address, _, _ in named)
        master = next((a for a, n in votes.items() if n >= majority), None)
        if master is None:
            return None
        # A Sentinel still naming the previous master is only late to hear of the switch. One
        # that sees this master objectively down or fails it over is what matters; not s_down
        # or disconnected: one Sentinel's opinion, common on a loaded machine.
        views = [(m, r) for address, m, r in named if address == master]
        troubled = any(FAILOVER_FLAGS & set(m.get("flags", "").split(",")) for m, _ in views)
        # Every replica not known to be down counts, promoted or not: a replica being
        # promoted is one the deposed master's writes must already be on.
        up = max(
            sum(not DOWN_FLAGS & set(x.get("flags", "").split(",")) for x in r) for _, r in views
        )
        dissenting = len(named) - votes[master]
        listed = frozenset((x["ip"], int(x["port"])) for _, r in views for x in r)
        return ReplicaCensus(master, up, troubled, dissenting, listed)

    return census


def connect(options: RedisOptions) -> RedisConnection:
    """A client (no I/O yet) and, with Sentinel, the census of the master's replicas that
    durable commits ask."""
    common = _common(options)
    auth: dict[str, Any] = {"username": options.username, "password": options.password}
    if options.sentinels and options.cluster_nodes:
        raise ValueError("RedisOptions takes Sentinels or cluster nodes, not both")
    if options.cluster_nodes:
        host, port = options.cluster_nodes[0]  # how to connect; where comes from the cluster
        client = Redis(host=host, port=port, **common, **auth)
        cluster = ClusterCommands(client, options.cluster_nodes, tls=options.tls)
        return RedisConnection(client, None, cluster, [cluster.close, client.aclose])
    if options.sentinels:
        # Sentinel's own password goes in sentinel_kwargs, not with the Redis password.
        sentinel_options = {
            **common,
            "retry": Retry(NoBackoff(), 0),
            # Sentinels answer at once: a silent one is skipped quickly for the next.
            "socket_timeout": min(options.socket_timeout, SENTINEL_TIMEOUT),
            "password": options.sentinel_password,
        }
        sentinel = Sentinel(options.sentinels, sentinel_kwargs=sentinel_options, **common, **auth)
        client = sentinel.master_for(
            options.master_name, max_connections=options.max_connections, **common, **auth
        )
        census_connections = [CommandBatcher(s) for s in sentinel.sentinels]
        census_timeout = options.connect_timeout + SENTINEL_TIMEOUT
        census = sentinel_census(census_connections, options.master_name, census_timeout)
        # The master the census names, not redis-py's first Sentinel answer: one decision.
        commands = CommandBatcher(client, master_address=master_named_by(census))
        # Sentinel.aclose() does not close clients made by master_for: close both.
        closers = [
            commands.close,
            client.aclose,
            *(s.aclose for s in sentinel.sentinels),
            *(c.close for c in census_connections),
        ]
        return RedisConnection(client, census, commands, closers)
    if not options.url:
        raise ValueError("RedisOptions needs a url, sentinels or cluster nodes")
    url = options.url
    if common.pop("ssl", False) and url.startswith("redis://"):
        # from_url takes TLS from the scheme: ssl=True beside redis:// reached redis-py's
        # plain connection as an unknown option (and a batcher that ignored it: plain text).
        url = "rediss://" + url.removeprefix("redis://")
    client = Redis.from_url(url, max_connections=options.max_connections, **common, **auth)
    commands = CommandBatcher(client)
    return RedisConnection(client, None, commands, [commands.close, client.aclose])
