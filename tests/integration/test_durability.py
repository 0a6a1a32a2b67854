"""A commit is acknowledged only once enough replicas hold it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from app.sessions import Limits, RedisSessionStore
from app.sessions.census import ReplicaCensus
from app.sessions.errors import NotDurable
from app.sessions.store import CommitRequest


@pytest.mark.parametrize("wait_all_writes", [True, False])
async def test_login_without_replica_ack_is_503_not_ok(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], wait_all_writes: bool
) -> None:
    # A standalone Redis has no replica: WAIT 1 can never be satisfied.
    settings = settings_for(
        "redis",
        redis_wait_replicas=1,
        redis_wait_timeout_ms=100,
        redis_wait_all_writes=wait_all_writes,
        store_deadline=1.0,
    )
    client = await client_for(settings)
    started = time.monotonic()
    response = await client.post(
        "/login", json={"username": "user-0001", "password": "correct horse battery staple"}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "set-cookie" not in response.headers  # the client learns no session ID
    assert time.monotonic() - started < 1.6
    assert "replicas" in response.json()["detail"]


async def test_no_census_means_no_commit_not_the_minimum(redis_db: redis.Redis) -> None:
    # Sentinels that do not answer are what a loaded fleet mid-failover looks like: falling
    # back to WAIT 1 there let a replica about to be resynchronised acknowledge writes.
    async def no_sentinel_answers() -> ReplicaCensus | None:
        return None

    port = redis_db.connection_pool.connection_kwargs["port"]
    store = RedisSessionStore(
        Redis(port=port),
        Limits(idle_ms=60_000, lifetime_ms=600_000, max_bytes=4096),
        wait_replicas=1,
        wait_timeout_ms=50,
        deadline=0.3,
        census=no_sentinel_answers,
    )
    request = CommitRequest("t1", create=True, sets={"a": (0, b"1")}, durable=True)
    with pytest.raises(NotDurable, match="no majority of Sentinels answered"):
        await store.commit("k1", request)
    assert redis_db.keys("*") == []  # not even sent: the master holds nothing unacknowledged
    await store.close()
