"""Automatic pipelining: the Redis commands that concurrent requests issue within one
event-loop iteration go out as one write on one connection; replies come back in order and
each goes to its caller. It is the process's only connection to the master: every command of
the session store, the login throttle and the order book goes over it.

Each request still makes one round trip per load or commit; what is shared is the client's
per-call work. redis-py's pipeline cost ~20 µs of Python per command (packing, the pool, its
response machinery); here hiredis packs and parses in C and one `asyncio.Protocol` matches
replies to callers, ~5 µs a command. How to connect (password, database, TLS, timeouts) is
read from a redis-py client's options, which sends nothing itself; where, from the Sentinel
census when there is one (the master a majority names: the master durable commits check),
else from the client's address.

Commits that must be acknowledged by replicas share one `WAIT` at the end of their batch: `WAIT`
covers every write the connection made before it, so one wait confirms the whole batch.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any, cast

import hiredis
from redis import exceptions as rx
from redis.asyncio import Redis
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool

Address = tuple[str, int]
# Where the master is now, asked each time the connection is (re)made.
AddressSource = Callable[[], Awaitable[Address]]


class _Call:
    __slots__ = ("args", "deadline", "deadline_timer", "expires", "future", "reply", "wait")

    def __init__(
        self,
        args: tuple[Any, ...],
        wait: tuple[int, int] | None,
        future: asyncio.Future[Any],
        deadline: float | None = None,
    ) -> None:
        self.args = args
        self.wait = wait  # (budget in ms, replicas) when the reply must be acknowledged
        self.future = future
        self.reply: Any = None
        self.expires = 0.0  # when the server must have answered (set when sent)
        self.deadline = deadline  # the caller's (`time.monotonic()`), if any
        self.deadline_timer: _DeadlineTimer | None = None  # the timer that enforces it

    def answer(self, reply: Any) -> None:
        if self.wait is not None:
            self.reply = reply  # held until the batch's WAIT answers
        else:
            self.settle(result=(reply, None))

    def fail(self, exc: BaseException) -> None:
        self.settle(exc=exc)

    def settle(self, result: Any = None, exc: BaseException | None = None) -> None:
        if self.future.done():
            return  # cancelled, or past its deadline: the reply is dropped
        if exc is None:
            self.future.set_result(result)
        else:
            self.future.set_exception(exc)
        if self.deadline_timer is not None:
            self.deadline_timer.settled()


class _DeadlineTimer:
    """One loop timer for the calls queued in one event-loop iteration, at the earliest of
    their deadlines, re-armed for the rest. (uvloop allocates a libuv timer per `call_later`:
    one per call cost ~4% of the benchmark's throughput.)"""

    __slots__ = ("calls", "left", "timer")

    def __init__(self, calls: list[_Call]) -> None:
        waiting = [call for call in calls if not call.future.done()]
        self.left = len(waiting)  # not settled yet (a caller cancelled later never settles)
        self.timer: asyncio.TimerHandle | None = None
        for call in waiting:
            call.deadline_timer = self
        self._arm(waiting)

    def _arm(self, waiting: list[_Call]) -> None:
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


class _Wait:
    """The `WAIT` closing a batch: its reply (replicas that acknowledged) goes to every
    caller of the batch that asked for one."""

    __slots__ = ("calls", "expires")

    def __init__(self, calls: list[_Call]) -> None:
        self.calls = calls
        self.expires = 0.0

    def answer(self, reply: Any) -> None:
        acked = reply if isinstance(reply, int) else 0
        for call in self.calls:
            call.settle(result=(call.reply, acked))

    def fail(self, exc: BaseException) -> None:
        for call in self.calls:
            call.fail(exc)


def _error_of(reply: hiredis.ReplyError) -> rx.ResponseError:
    # The classes the store and its retry policy recognise (messages keep their prefix).
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return rx.NoScriptError(message)
    return rx.ResponseError(message)


class _Endpoint:
    """Where and how to connect, read from the redis-py client's pool; where, from
    `master_address` instead when given (the Sentinel census)."""

    def __init__(self, client: Redis, master_address: AddressSource | None = None) -> None:
        pool = client.connection_pool
        options = pool.connection_kwargs
        self.pool = pool
        self.master_address = master_address
        self.path: str | None = options.get("path")  # unix socket
        self.address: Address = (options.get("host", "localhost"), int(options.get("port", 6379)))
        self.connect_timeout = float(options.get("socket_connect_timeout") or 5.0)
        self.read_timeout = float(options.get("socket_timeout") or 5.0)
        self.handshake: list[tuple[Any, ...]] = []
        if options.get("password"):
            user = (options["username"],) if options.get("username") else ()
            self.handshake.append(("AUTH", *user, options["password"]))
        if options.get("db"):
            self.handshake.append(("SELECT", options["db"]))
        self.ssl: SSLContext | None = None
        if issubclass(pool.connection_class, SSLConnection):
            self.ssl = pool.connection_class(**options).ssl_context.get()

    async def current_address(self) -> Address:
        if self.master_address is not None:
            return await self.master_address()
        if isinstance(self.pool, SentinelConnectionPool):
            host, port = await self.pool.get_master_address()  # also steers redis-py's pool
            return str(host), int(port)
        return self.address


class _Pipe(asyncio.Protocol):
    """One connection: commands written in order, replies matched to them in order."""

    def __init__(self, address: Address, read_timeout: float) -> None:
        self.address = address
        self.read_timeout = read_timeout
        self.reader = hiredis.Reader()
        self.slots: deque[_Call | _Wait] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, endpoint: _Endpoint) -> _Pipe:
        loop = asyncio.get_running_loop()
        address = await endpoint.current_address()
        pipe = cls(address, endpoint.read_timeout)
        try:
            async with asyncio.timeout(endpoint.connect_timeout):
                if endpoint.path:
                    await loop.create_unix_connection(lambda: pipe, endpoint.path, ssl=endpoint.ssl)
                else:
                    host, port = address
                    await loop.create_connection(lambda: pipe, host, port, ssl=endpoint.ssl)
        except (OSError, TimeoutError) as exc:
            raise rx.ConnectionError(f"cannot connect to Redis at {address}: {exc!r}") from exc
        try:
            await pipe._handshake(endpoint.handshake)
        except BaseException:  # refused, timed out or cancelled: leave no socket behind
            pipe.close()
            raise
        return pipe

    async def _handshake(self, commands: list[tuple[Any, ...]]) -> None:
        loop = asyncio.get_running_loop()
        calls = [_Call(args, None, loop.create_future()) for args in commands]
        if calls:
            self.send(calls)
        for call in calls:
            reply, _ = await call.future
            if isinstance(reply, Exception):
                raise rx.AuthenticationError(f"{call.args[0]} refused: {reply}")

    def send(self, calls: list[_Call]) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        expires = loop.time() + self.read_timeout
        waits = [call for call in calls if call.wait is not None]
        packed = [hiredis.pack_command(call.args) for call in calls]
        for call in calls:
            call.expires = expires
        self.slots.extend(calls)
        if waits:  # the most replicas asked for, within the shortest budget
            budget_ms = min(ms for ms, _ in (call.wait for call in waits if call.wait))
            replicas = max(r for _, r in (call.wait for call in waits if call.wait))
            wait_args: tuple[Any, ...] = ("WAIT", replicas, budget_ms)
            packed.append(hiredis.pack_command(wait_args))
            closing = _Wait(waits)
            closing.expires = expires + budget_ms / 1000
            self.slots.append(closing)
        self.transport.write(b"".join(packed))
        if self._timer is None:
            self._timer = loop.call_at(expires, self._check_answered)

    def _check_answered(self) -> None:
        """A server that stopped answering (frozen, partitioned) is dropped after the read
        timeout: every call waiting on it fails over to a retry on a new connection."""
        self._timer = None
        if not self.slots:
            return
        loop = asyncio.get_running_loop()
        head = self.slots[0].expires
        if head <= loop.time():
            self.close(rx.TimeoutError(f"Redis at {self.address} did not answer in time"))
        else:
            self._timer = loop.call_at(head, self._check_answered)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    reply = _error_of(reply)
                    if str(reply).startswith("READONLY"):
                        self.closed = True  # a replica now: the next batch asks Sentinel again
                self.slots.popleft().answer(reply)
        except hiredis.ProtocolError as exc:
            self.close(rx.InvalidResponse(str(exc)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(rx.ConnectionError(f"connection to Redis at {self.address} lost: {exc!r}"))

    def close(self, exc: Exception | None = None) -> None:
        """Drop the connection; calls still waiting for a reply get `exc`."""
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        failure = exc or rx.ConnectionError("connection closed")
        while self.slots:
            self.slots.popleft().fail(failure)
        if self.transport is not None:
            self.transport.abort()


class CommandBatcher:
    """One pipelined connection to the server `client` is configured for (address, TLS,
    credentials, database, timeouts: the client itself sends nothing). `master_address`, when
    given, says where the master is each time it connects (with Sentinel: the master a
    majority of Sentinels name, the same decision durable commits check); an exception it
    raises fails the waiting callers like a refused connection."""

    def __init__(self, client: Redis, *, master_address: AddressSource | None = None) -> None:
        self.endpoint = _Endpoint(client, master_address)
        self._pending: list[_Call] = []
        self._untimed: list[_Call] = []  # calls with a deadline that no timer enforces yet
        self._flush_scheduled = False
        self._pipe: _Pipe | None = None
        self._connecting: asyncio.Task[None] | None = None

    @property
    def address(self) -> Address | None:
        """The server the batches go to (None while not connected: the next batch asks)."""
        pipe = self._pipe
        return pipe.address if pipe is not None and not pipe.closed else None

    def call(
        self, *args: Any, wait: tuple[int, int] | None = None, deadline: float | None = None
    ) -> asyncio.Future[tuple[Any, int | None]]:
        """Queue one command for the next batch; await the result: (its reply, replicas that
        acknowledged the batch when `wait` = (budget ms, replicas) is given, else None). A
        reply that is an error comes back as the exception object; a connection failure is
        raised (every caller of the batch gets it and retries). With a `deadline`
        (`time.monotonic()`), the call fails with a timeout then, connected or not. A future,
        not a coroutine: one frame less to resume per call."""
        loop = asyncio.get_running_loop()
        call = _Call(args, wait, loop.create_future(), deadline)
        self._pending.append(call)
        if deadline is not None:
            self._untimed.append(call)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)
        return call.future

    def reconnect(self) -> None:
        """Drop the connection: the next batch connects to the master named then."""
        if self._pipe is not None:
            self._pipe.close()

    async def close(self) -> None:
        self.reconnect()
        if self._connecting is not None:
            self._connecting.cancel()

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
        self._pending = []
        pipe.send(live)

    async def _connect(self) -> None:
        try:
            if self._pipe is not None:
                self._pipe.close()
                self._pipe = None
            # Bounded: a Sentinel or server that does not answer must not hold the callers.
            async with asyncio.timeout(self.endpoint.connect_timeout + self.endpoint.read_timeout):
                self._pipe = await _Pipe.open(self.endpoint)
        except Exception as exc:  # handed to every caller waiting for this connection
            failed, self._pending = self._pending, []
            for call in failed:
                call.fail(exc)
        finally:
            self._connecting = None
        self._flush()
