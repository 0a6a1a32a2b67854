"""Builds the Redis client the stores use: a Sentinel-managed master or a standalone server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from .sessions.redis_store import Census, ReplicaCensus
from .settings import Settings

Closer = Callable[[], Awaitable[None]]

SENTINEL_TIMEOUT = 0.5  # seconds a Sentinel query may take


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


def sentinel_census(sentinel: Sentinel, master_name: str) -> Census:
    """What the first Sentinel that answers says about the master and its replicas."""

    async def census() -> ReplicaCensus | None:
        for client in sentinel.sentinels:
            try:
                async with client.pipeline(transaction=False) as pipe:
                    pipe.sentinel_master(master_name)
                    pipe.sentinel_slaves(master_name)
                    master, replicas = await pipe.execute()
            except (rx.ConnectionError, rx.TimeoutError, rx.ResponseError):
                continue
            # Every replica not known to be down counts, promoted or not: a replica being
            # promoted is one the deposed master's writes must already be on.
            down = ("is_sdown", "is_odown", "is_disconnected")
            up = [r for r in replicas if not any(r[flag] for flag in down)]
            flags = str(master.get("flags", ""))
            return ReplicaCensus(
                (str(master["ip"]), int(master["port"])),
                len(up),
                failing_over="failover" in flags or "promoted" in flags,
            )
        return None

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
        return client, closers, sentinel_census(sentinel, settings.redis_master_name)
    assert settings.redis_url, "make_redis needs redis_url or redis_sentinels"
    client = Redis.from_url(
        settings.redis_url, max_connections=settings.redis_max_connections, **options, **auth
    )
    return client, [client.aclose], None
