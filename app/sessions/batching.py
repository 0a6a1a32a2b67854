"""Automatic pipelining: the Redis commands that concurrent requests issue within one
event-loop iteration go out together on one connection (one write per `flush_at` of them);
replies come back in order and each goes to its caller. It is the process's only connection
to the master: every command of the session store, the login throttle and the order book goes
over it.

Each request still makes one round trip per load or commit; what is shared is the client's
per-call work. redis-py's pipeline cost ~20 µs of Python per command (packing, the pool, its
response machinery); here hiredis packs and parses in C and one `asyncio.Protocol` matches
replies to callers, ~5 µs a command. How to connect (password, database, TLS, timeouts) is
read from a redis-py client's options, which sends nothing itself; where, from the Sentinel
census when there is one (the master a majority names: the master durable commits check),
else from the client's address.

Commits that must be acknowledged by replicas share one `WAIT` at the end of their batch: `WAIT`
covers every write the connection made before it, so one wait confirms the whole batch. A `ROLE`
goes right behind it: which replicas were connected as `WAIT` answered (see `pipe.Ack`).

A batch is written once it holds `flush_at` commands, before the iteration ends. Held to the
end, a burst of requests moved in a convoy: every one waited for the last one's code before any
command went out, then the process idled while Redis (and the replica, for `WAIT`) worked
through the lot; under wrk the full app's process was ~15% idle with requests in flight.

A write carries at most `max_batch` commands (the rest follow in the next writes of the same
iteration), and nothing more is written while the transport's buffer is over its high-water
mark (a server that reads slowly): what callers queue meanwhile waits in the batcher, bounded
by their deadlines, and goes out when the buffer drains. The wire itself is `pipe.py`; where
and how to connect, `endpoint.py`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from redis import exceptions as rx
from redis.asyncio import Redis

from .endpoint import Address, AddressSource, Endpoint
from .pipe import Ack, Call, Pipe

# Commands per write: bounds one write's size (and the bytes joined for it) under a burst.
MAX_BATCH = 256
# A batch goes out as soon as it holds this many commands, not at the end of the event-loop
# iteration: Redis works on them while the process runs the iteration's other requests.
FLUSH_AT = 16


class _DeadlineTimer:
    """One loop timer for the calls queued in one event-loop iteration, at the earliest of
    their deadlines, re-armed for the rest. (uvloop allocates a libuv timer per `call_later`:
    one per call cost ~4% of the benchmark's throughput.)"""

    __slots__ = ("calls", "left", "timer")

    def __init__(self, calls: list[Call]) -> None:
        waiting = [call for call in calls if not call.future.done()]
        self.left = len(waiting)  # not settled yet (a caller cancelled later never settles)
        self.timer: asyncio.TimerHandle | None = None
        for call in waiting:
            call.deadline_timer = self
        self._arm(waiting)

    def _arm(self, waiting: list[Call]) -> None:
        self.calls = waiting
        if waiting:
            first = min(cast(float, call.deadline) for call in waiting)
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(first - time.monotonic(), self._expire)

    def _expire(self) -> None:
        self.timer = None
        now = time.monotonic()
        for call in self.calls:
            if cast(float, call.deadline) <= now:
                call.fail(rx.TimeoutError("no reply from Redis by the deadline"))
        self._arm([call for call in self.calls if not call.future.done()])

    def settled(self) -> None:
        self.left -= 1
        if not self.left:
            self.calls = []  # calls and this point at each other: leave no cycle for the GC
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None


class CommandBatcher:
    """One pipelined connection to the server `client` is configured for (address, TLS,
    credentials, database, timeouts: the client itself sends nothing; an option it has that
    the connection would not honour raises `ValueError` here). `master_address`, when given,
    says where the master is each time it connects (with Sentinel: the master a majority of
    Sentinels name, the same decision durable commits check); an exception it raises fails
    the waiting callers like a refused connection. `write_buffer_high`: the transport's
    high-water mark in bytes (None: the event loop's default, 64 KiB)."""

    def __init__(
        self,
        client: Redis,
        *,
        master_address: AddressSource | None = None,
        max_batch: int = MAX_BATCH,
        flush_at: int = FLUSH_AT,
        write_buffer_high: int | None = None,
    ) -> None:
        if max_batch < 1 or flush_at < 1:
            raise ValueError(f"max_batch and flush_at must be at least 1: {max_batch}, {flush_at}")
        self.endpoint = Endpoint(client, master_address)
        self.max_batch = max_batch
        self.flush_at = flush_at
        self.write_buffer_high = write_buffer_high
        self._pending: list[Call] = []
        self._untimed: list[Call] = []  # calls with a deadline that no timer enforces yet
        self._flush_scheduled = False
        self._pipe: Pipe | None = None
        self._connecting: asyncio.Task[None] | None = None

    @property
    def address(self) -> Address | None:
        """The server the batches go to (None while not connected: the next batch asks)."""
        pipe = self._pipe
        return pipe.address if pipe is not None and not pipe.closed else None

    @property
    def queued(self) -> int:
        """Calls not written yet (waiting for a connection, or for the buffer to drain)."""
        return len(self._pending)

    def call(
        self, *args: Any, wait: tuple[int, int] | None = None, deadline: float | None = None
    ) -> asyncio.Future[tuple[Any, Ack | None]]:
        """Queue one command for the next batch; await the result: (its reply, the batch's
        `Ack` when `wait` = (budget ms, replicas) is given, else None). A
        reply that is an error comes back as the exception object (redis-py's class for it:
        `ReadOnlyError`, `BusyLoadingError`, `MasterDownError`, `NoScriptError`...); a
        connection failure (refused, lost, a protocol error) is raised as `ConnectionError`,
        a server silent past the read timeout as `TimeoutError` (every caller waiting on that
        connection gets it and retries; the next call reconnects). With a `deadline`
        (`time.monotonic()`), the call fails with a timeout then, connected or not. A caller
        cancelled after its command went out leaves its slot: the others' replies stay
        theirs. A future, not a coroutine: one frame less to resume per call."""
        loop = asyncio.get_running_loop()
        call = Call(args, wait, loop.create_future(), deadline)
        self._pending.append(call)
        if deadline is not None:
            self._untimed.append(call)
        if len(self._pending) >= self.flush_at and self._writable_now():
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return call.future

    def _writable_now(self) -> bool:
        pipe = self._pipe
        return pipe is not None and not pipe.closed and not pipe.paused

    def reconnect(self) -> None:
        """Drop the connection: the next batch connects to the master named then."""
        if self._pipe is not None:
            self._pipe.close()

    async def close(self) -> None:
        failed, self._pending = self._pending, []
        for call in failed:
            call.fail(rx.ConnectionError("connection closed"))
        self.reconnect()
        if self._connecting is not None:
            self._connecting.cancel()

    def _writable(self) -> None:
        """The connection drained its buffer, or closed: send (or reconnect for) the rest."""
        if self._pending and not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._untimed:
            _DeadlineTimer(self._untimed)
            self._untimed = []
        live = [call for call in self._pending if not call.future.done()]  # done: cancelled
        self._pending = live
        if not live:
            return
        pipe = self._pipe
        if pipe is None or pipe.closed:
            if self._connecting is None:
                self._connecting = asyncio.ensure_future(self._connect())
            return
        sent, cap = 0, self.max_batch
        while sent < len(live) and not pipe.paused:
            pipe.send(live[sent : sent + cap] if sent or len(live) > cap else live)
            sent += cap
        self._pending = live[sent:] if sent < len(live) else []

    async def _connect(self) -> None:
        try:
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None
            # Bounded: a Sentinel or server that does not answer must not hold the callers.
            async with asyncio.timeout(self.endpoint.connect_timeout + self.endpoint.read_timeout):
                pipe = await Pipe.open(self.endpoint, self._writable)
            if pipe.transport is not None and self.write_buffer_high is not None:
                pipe.transport.set_write_buffer_limits(high=self.write_buffer_high)
            self._pipe = pipe
        except Exception as exc:  # handed to every caller waiting for this connection
            failed, self._pending = self._pending, []
            for call in failed:
                call.fail(exc)
        finally:
            self._connecting = None
        self._flush()
