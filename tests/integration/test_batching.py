"""Automatic pipelining against a real Redis: each caller gets its own reply, errors stay with
their caller, a cancelled caller does not disturb the batch, one WAIT serves the batch; a
silent server costs a caller no more than its deadline, and the connection is replaced."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis import exceptions as rx
from redis.asyncio import Redis

from app.sessions.batching import CommandBatcher
from harness.processes import RedisServer

pytestmark = pytest.mark.redis


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
    from harness.processes import free_port

    dead = CommandBatcher(Redis(port=free_port(), socket_connect_timeout=0.2))
    results = await asyncio.gather(*(dead.call("PING") for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, rx.ConnectionError) for r in results)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of the test's own, to freeze or lock; running again and stopped afterwards."""
    server = RedisServer(tmp_path / "own")
    yield server
    server.proc.signal(signal.SIGCONT)
    server.stop()


async def test_a_call_fails_by_its_deadline_when_the_server_stops_answering(
    own_server: RedisServer,
) -> None:
    batcher = CommandBatcher(Redis.from_url(own_server.url, socket_timeout=10))
    assert await batcher.call("PING") == (b"PONG", None)
    own_server.proc.signal(signal.SIGSTOP)
    started = time.monotonic()
    with pytest.raises(rx.TimeoutError):
        await batcher.call("PING", deadline=time.monotonic() + 0.3)
    assert 0.25 < time.monotonic() - started < 1.0  # the deadline, not the 10 s read timeout


async def test_calls_of_one_batch_fail_each_by_its_own_deadline(own_server: RedisServer) -> None:
    # One timer serves a batch: it must fire for the earliest deadline and again for the next.
    batcher = CommandBatcher(Redis.from_url(own_server.url, socket_timeout=10))
    assert await batcher.call("PING") == (b"PONG", None)
    own_server.proc.signal(signal.SIGSTOP)
    started = time.monotonic()

    async def failed_after(seconds: float) -> float:
        with pytest.raises(rx.TimeoutError):
            await batcher.call("PING", deadline=started + seconds)
        return time.monotonic() - started

    late, early = await asyncio.gather(failed_after(0.6), failed_after(0.2))
    assert 0.15 < early < 0.45
    assert 0.55 < late < 1.2


async def test_a_silent_server_is_dropped_after_the_read_timeout_and_replaced(
    own_server: RedisServer,
) -> None:
    batcher = CommandBatcher(Redis.from_url(own_server.url, socket_timeout=0.3))
    await batcher.call("SET", "kept", 1)
    own_server.proc.signal(signal.SIGSTOP)
    with pytest.raises(rx.TimeoutError):
        await batcher.call("GET", "kept")  # no deadline: the read timeout ends it
    own_server.proc.signal(signal.SIGCONT)
    assert await batcher.call("GET", "kept") == (b"1", None)  # on a new connection


async def test_password_and_database_come_from_the_client(own_server: RedisServer) -> None:
    own_server.client.config_set("requirepass", "s3cret")
    url = f"redis://:s3cret@127.0.0.1:{own_server.port}/3"
    await CommandBatcher(Redis.from_url(url)).call("SET", "where", "db3")
    admin = redis.Redis(port=own_server.port, password="s3cret", db=3)
    assert admin.get("where") == b"db3"
    wrong = CommandBatcher(Redis.from_url(url.replace("s3cret", "wrong")))
    with pytest.raises(rx.AuthenticationError):
        await wrong.call("PING")
