"""Automatic pipelining against a real Redis: each caller gets its own reply, errors stay with
their caller, a cancelled caller does not disturb the batch, one WAIT serves the batch; a
silent server costs a caller no more than its deadline, and the connection is replaced."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis import exceptions as rx
from redis.asyncio import Redis

from app.sessions import Ack
from app.sessions.batching import CommandBatcher
from harness.processes import RedisServer

pytestmark = pytest.mark.redis


@pytest.fixture
async def batcher(
    redis_db: redis.Redis, redis_server: RedisServer
) -> AsyncIterator[CommandBatcher]:
    batcher = CommandBatcher(Redis.from_url(redis_server.url))
    yield batcher
    await batcher.close()


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
    # ...and the ROLE behind it lists no connected replica.
    assert [ack for _, ack in waited] == [Ack(0, frozenset())] * 5
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


async def test_a_caller_cancelled_after_its_command_went_out_leaves_the_replies_in_order(
    own_server: RedisServer,
) -> None:
    batcher = CommandBatcher(Redis.from_url(own_server.url, socket_timeout=10))
    await asyncio.gather(batcher.call("SET", "a", "for a"), batcher.call("SET", "b", "for b"))
    own_server.proc.signal(signal.SIGSTOP)  # the replies wait: the cancel comes first
    doomed = asyncio.ensure_future(batcher.call("GET", "a"))
    await asyncio.sleep(0.05)
    assert batcher.queued == 0  # written, its reply on the way
    doomed.cancel()
    survivor = batcher.call("GET", "b")
    await asyncio.sleep(0.05)
    own_server.proc.signal(signal.SIGCONT)
    assert await survivor == (b"for b", None)
    assert await batcher.call("GET", "a") == (b"for a", None)
    await batcher.close()


async def test_a_connection_lost_mid_batch_fails_every_caller_and_the_next_call_reconnects(
    batcher: CommandBatcher, redis_db: redis.Redis
) -> None:
    (first_id, _) = await batcher.call("CLIENT", "ID")
    # BLPOP holds the connection: the commands after it wait in Redis' buffer, unanswered.
    batch = [batcher.call("BLPOP", "never", 0), batcher.call("INCR", "n"), batcher.call("PING")]
    await asyncio.sleep(0.1)
    redis_db.client_kill_filter(_id=first_id)
    async with asyncio.timeout(5):  # a caller left hanging fails here, not at pytest's timeout
        results = await asyncio.gather(*batch, return_exceptions=True)
    assert all(isinstance(r, rx.ConnectionError) for r in results), results
    assert redis_db.get("n") is None
    (second_id, _) = await batcher.call("CLIENT", "ID")
    assert second_id != first_id


def _count_writes(batcher: CommandBatcher) -> list[int]:
    """The number of commands in each write on `batcher`'s (open) connection from now on."""
    pipe = batcher._pipe
    assert pipe is not None
    writes: list[int] = []
    send = pipe.send

    def counting_send(calls: list[Any]) -> None:
        writes.append(len(calls))
        send(calls)

    pipe.send = counting_send  # type: ignore[method-assign]
    return writes


async def test_a_batch_is_written_at_most_max_batch_commands_at_a_time(
    redis_db: redis.Redis, redis_server: RedisServer
) -> None:
    batcher = CommandBatcher(Redis.from_url(redis_server.url), max_batch=4)
    await batcher.call("PING")  # connected
    writes = _count_writes(batcher)
    replies = await asyncio.gather(*(batcher.call("INCR", "n", wait=(10, 0)) for _ in range(10)))
    assert writes == [4, 4, 2]
    assert sorted(int(reply) for reply, _ in replies) == list(range(1, 11))
    # Each write closed by its own WAIT (and ROLE).
    assert all(ack == Ack(0, frozenset()) for _, ack in replies)
    await batcher.close()


async def test_a_batch_goes_out_once_it_holds_flush_at_commands(redis_server: RedisServer) -> None:
    # Not at the end of the event-loop iteration: Redis starts on the first commands while
    # the process still runs the code that queues the rest.
    batcher = CommandBatcher(Redis.from_url(redis_server.url), flush_at=3)
    await batcher.call("PING")  # connected
    writes = _count_writes(batcher)
    calls = [batcher.call("INCR", "eager") for _ in range(2)]
    assert writes == []
    calls.append(batcher.call("INCR", "eager"))
    assert writes == [3]  # written before this code gave the loop a turn
    calls += [batcher.call("INCR", "eager") for _ in range(4)]
    assert writes == [3, 3]
    replies = await asyncio.gather(*calls)
    assert writes == [3, 3, 1]  # the rest at the end of the iteration
    assert [int(reply) for reply, _ in replies] == list(range(1, 8))
    await batcher.close()


async def test_nothing_more_is_written_while_the_server_reads_nothing(
    own_server: RedisServer,
) -> None:
    high = 64 * 1024
    value = b"x" * (512 * 1024)
    batcher = CommandBatcher(
        Redis.from_url(own_server.url, socket_timeout=10), max_batch=1, write_buffer_high=high
    )
    await batcher.call("PING")
    own_server.proc.signal(signal.SIGSTOP)
    calls = [batcher.call("SET", f"k{i}", value) for i in range(64)]  # 32 MiB
    await asyncio.sleep(0.3)
    pipe = batcher._pipe
    assert pipe is not None and pipe.transport is not None
    buffered = pipe.transport.get_write_buffer_size()
    assert batcher.queued > 0  # held back, not piled into the transport
    assert buffered <= high + len(value) + 1024
    own_server.proc.signal(signal.SIGCONT)
    async with asyncio.timeout(10):  # what was held back goes out once the buffer drains
        assert [reply for reply, _ in await asyncio.gather(*calls)] == [b"OK"] * 64
    assert own_server.client.strlen("k63") == len(value)
    await batcher.close()


class FakeRedis:
    """A TCP server on loopback whose first connection answers `first`; later ones answer
    +PONG to whatever they read."""

    def __init__(self, first: bytes) -> None:
        self.first = first
        self.connections = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answer = self.first if self.connections == 1 else b"+PONG\r\n"
        try:
            while await reader.read(4096):
                writer.write(answer)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.mark.parametrize(
    ("first", "first_call_fails"),
    [(b"\x00garbage\r\n", True), (b"+PONG\r\n+PONG\r\n", False)],
    ids=["garbage", "reply-to-no-command"],
)
async def test_a_protocol_error_fails_the_callers_and_the_next_call_reconnects(
    first: bytes, first_call_fails: bool, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeRedis(first)
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    batcher = CommandBatcher(Redis(port=port, socket_timeout=2))
    try:
        if first_call_fails:
            with pytest.raises(rx.ConnectionError, match="protocol error"):
                await batcher.call("PING")
        else:  # the extra reply could only be matched to the next caller's command: dropped
            assert await batcher.call("PING") == (b"PONG", None)
            await asyncio.sleep(0.05)
            assert batcher.address is None
        assert await batcher.call("PING") == (b"PONG", None)
        assert fake.connections == 2
        # Closed by the connection itself, not by the event loop after an exception in it.
        assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    finally:
        await batcher.close()
        server.close()
        await server.wait_closed()
