"""Automatic pipelining against a real Redis: each caller gets its own reply, errors stay with
their caller, a cancelled caller does not disturb the batch, one WAIT serves the batch."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis import exceptions as rx
from redis.asyncio import Redis

from app.sessions.batching import CommandBatcher
from tests.support.processes import RedisServer


@pytest.fixture
async def batcher(redis_db: redis.Redis, redis_server: RedisServer) -> CommandBatcher:
    return CommandBatcher(Redis.from_url(redis_server.url))


async def test_concurrent_calls_get_their_own_replies(batcher: CommandBatcher) -> None:
    await asyncio.gather(*(batcher.call("SET", f"k{i}", i) for i in range(50)))
    replies = await asyncio.gather(*(batcher.call("GET", f"k{i}") for i in range(50)))
    assert [int(reply) for reply, _ in replies] == list(range(50))
    assert all(acked is None for _, acked in replies)


async def test_an_error_reply_goes_to_its_caller_only(batcher: CommandBatcher) -> None:
    await batcher.call("SET", "text", "x")
    good, bad = await asyncio.gather(batcher.call("GET", "text"), batcher.call("HGET", "text", "f"))
    assert good[0] == b"x"
    assert isinstance(bad[0], rx.ResponseError) and "WRONGTYPE" in str(bad[0])


async def test_a_cancelled_caller_leaves_the_others_alone(batcher: CommandBatcher) -> None:
    doomed = asyncio.ensure_future(batcher.call("SET", "doomed", 1))
    others = [asyncio.ensure_future(batcher.call("INCR", "n")) for _ in range(5)]
    doomed.cancel()
    results = await asyncio.gather(*others)
    assert sorted(int(r) for r, _ in results) == [1, 2, 3, 4, 5]


async def test_one_wait_answers_every_waiting_caller(batcher: CommandBatcher) -> None:
    # A standalone server has no replica: the shared WAIT reports 0 to each waiter.
    waited = await asyncio.gather(*(batcher.call("INCR", "w", wait=(50, 1)) for _ in range(5)))
    plain = await batcher.call("GET", "w")
    assert [acked for _, acked in waited] == [0] * 5
    assert plain == (b"5", None)


async def test_a_connection_failure_reaches_every_caller(redis_server: RedisServer) -> None:
    from tests.support.processes import free_port

    dead = CommandBatcher(Redis(port=free_port(), socket_connect_timeout=0.2))
    results = await asyncio.gather(*(dead.call("PING") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, rx.ConnectionError) for r in results)
