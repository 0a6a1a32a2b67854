"""Builds the Redis client the stores use: a Sentinel-managed master or a standalone server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from .sessions.census import Census, ReplicaCensus
from .settings import Settings

Closer = Callable[[], Awaitable[None]]

log = logging.getLogger(__name__)

SENTINEL_TIMEOUT = 0.5  # seconds a Sentinel query may take
# Master flags that mean a failover is decided (o_down) or under way.
FAILOVER_FLAGS = frozenset({"o_down", "failover_in_progress"})


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def _common(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {
        "socket_timeout": settings.redis_socket_timeout,
        "socket_connect_timeout": settings.redis_connect_timeout,
        "health_check_interval": 15,
        # No retries inside redis-py (its default: 3, with backoff from 1 s): the store retries
        # within the request's deadline itself. Left on, one call to a Sentinel or master that
        # vanished without a reset (a lost node) could eat the whole deadline, on every request.
        "retry": Retry(NoBackoff(), 0),
    }
    if settings.redis_tls:
        options["ssl"] = True
        if settings.redis_tls_ca_file:
            options["ssl_ca_certs"] = settings.redis_tls_ca_file
    return options


def sentinel_census(sentinel: Sentinel, master_name: str, census_timeout: float = 1.0) -> Census:
    """The master a majority of the Sentinels, asked at once, name, and what they say about it
    and its replicas. Only the Sentinel leading a failover flags it, so every one is asked. One
    that failed to answer is still asked but not waited for (its answer counts if it comes in
    time), so a lost node's Sentinel does not cost a timeout on every commit."""
    clients = sentinel.sentinels
    failing = [False] * len(clients)
    in_flight: list[asyncio.Future[Any] | None] = [None] * len(clients)

    async def ask(i: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        try:
            # Bounded as a whole (connect, AUTH, both replies): a query that hangs would
            # stay the one in flight for this Sentinel, and its answer would never count.
            async with asyncio.timeout(census_timeout):
                async with clients[i].pipeline(transaction=False) as pipe:
                    pipe.sentinel_master(master_name)
                    pipe.sentinel_slaves(master_name)
                    master, replicas = await pipe.execute()
        except (rx.RedisError, OSError, TimeoutError) as exc:
            if not failing[i]:
                log.warning("sentinel %d stopped answering the census: %r", i, exc)
            failing[i] = True
            # Nothing of that connection is trusted again: the next query connects afresh
            # (and looks the name up again: a restarted Sentinel may have a new address).
            with contextlib.suppress(Exception):
                await clients[i].connection_pool.disconnect()
            return None
        if failing[i]:
            log.warning("sentinel %d answers the census again", i)
        failing[i] = False
        return master, replicas

    def asked(i: int) -> asyncio.Future[Any]:
        task = in_flight[i]
        if task is None or task.done():  # one query per Sentinel at a time
            task = in_flight[i] = asyncio.ensure_future(ask(i))
        return task

    async def census() -> ReplicaCensus | None:
        tasks = [asked(i) for i in range(len(clients))]
        awaited = [t for i, t in enumerate(tasks) if not failing[i]]
        if awaited:
            await asyncio.wait(awaited)
        replies = [t.result() if t.done() else None for t in tasks]
        named = [((str(m["ip"]), int(m["port"])), m, r) for m, r in filter(None, replies)]
        majority = len(clients) // 2 + 1
        votes = Counter(address for address, _, _ in named)
        master = next((a for a, n in votes.items() if n >= majority), None)
        if master is None:
            return None
        # A Sentinel still naming the previous master is only late to hear of the switch. One
        # that sees this master objectively down or fails it over is what matters; not s_down
        # or disconnected: one Sentinel's opinion, common on a loaded machine.
        views = [(m, r) for address, m, r in named if address == master]
        troubled = any(FAILOVER_FLAGS & set(str(m.get("flags", "")).split(",")) for m, _ in views)
        # Every replica not known to be down counts, promoted or not: a replica being
        # promoted is one the deposed master's writes must already be on.
        down = ("is_sdown", "is_odown", "is_disconnected")
        up = max(sum(not any(x[f] for f in down) for x in r) for _, r in views)
        dissenting = len(named) - votes[master]
        return ReplicaCensus(master, up, failing_over=troubled, dissenting=dissenting)

    return census


def make_redis(settings: Settings) -> tuple[Redis, list[Closer], Census | None]:
    """A client (no I/O yet), what must be closed on shutdown (in order), and, with Sentinel,
    a census of the master's replicas for durable commits."""
    options = _common(settings)
    auth: dict[str, Any] = {
        "username": settings.redis_username,
        "password": _secret(settings.redis_password),
    }
    if settings.sentinel_addresses:
        # Sentinel's own password goes in sentinel_kwargs, not with the Redis password.
        sentinel_options = {
            **options,
            "retry": Retry(NoBackoff(), 0),
            # Sentinels answer at once: a silent one is skipped quickly for the next.
            "socket_timeout": min(settings.redis_socket_timeout, SENTINEL_TIMEOUT),
            "password": _secret(settings.sentinel_password),
        }
        sentinel = Sentinel(
            settings.sentinel_addresses, sentinel_kwargs=sentinel_options, **options, **auth
        )
        client = sentinel.master_for(
            settings.redis_master_name,
            max_connections=settings.redis_max_connections,
            **options,
            **auth,
        )
        # Sentinel.aclose() does not close clients made by master_for: close both.
        closers = [client.aclose, *(s.aclose for s in sentinel.sentinels)]
        census_timeout = settings.redis_connect_timeout + SENTINEL_TIMEOUT
        census = sentinel_census(sentinel, settings.redis_master_name, census_timeout)
        return client, closers, census
    assert settings.redis_url, "make_redis needs redis_url or redis_sentinels"
    client = Redis.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, **options, **auth
    )
    return client, [client.aclose], None
