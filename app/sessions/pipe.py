"""One pipelined connection on the wire: commands written in order, replies (parsed by
hiredis) handed to their callers in the same order. Error replies become the exceptions
redis-py raises for them; anything that breaks the order (a protocol error, a reply to no
command, a lost connection, a server silent past the read timeout) closes the connection and
fails every caller still waiting on it with a `ConnectionError` or `TimeoutError`."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

import hiredis
from redis import exceptions as rx

from .endpoint import Address, Endpoint

# Error replies by their first word, as redis-py classes them (its parser's table; a unit
# test compares). Messages keep that word: the retry policy and the census read it.
_ERRORS: dict[str, type[rx.RedisError]] = {
    "NOSCRIPT": rx.NoScriptError,
    "READONLY": rx.ReadOnlyError,
    "LOADING": rx.BusyLoadingError,
    "MASTERDOWN": rx.MasterDownError,
    "TRYAGAIN": rx.TryAgainError,
    "CLUSTERDOWN": rx.ClusterDownError,
    "OOM": rx.OutOfMemoryError,
    "EXECABORT": rx.ExecAbortError,
    "NOPERM": rx.NoPermissionError,
    "NOAUTH": rx.AuthenticationError,
    "WRONGPASS": rx.AuthenticationError,
    "MOVED": rx.MovedError,
    "ASK": rx.AskError,
}
# Redirections carry "<slot> <host>:<port>" after the word; their classes parse only that.
_REDIRECTS = ("MOVED", "ASK")
# Right behind a batch's WAIT: who the acknowledging replicas can have been (see `Ack`).
_ROLE = hiredis.pack_command(("ROLE",))
# Replies that say the node is no (usable) master: the next batch asks where the master is.
_NOT_A_MASTER = (rx.ReadOnlyError, rx.MasterDownError)


def error_of(reply: hiredis.ReplyError) -> rx.RedisError:
    message = str(reply)
    word, _, rest = message.partition(" ")
    if word in _REDIRECTS:
        return _ERRORS[word](rest)
    return _ERRORS.get(word, rx.ResponseError)(message)


class Call:
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
        self.deadline_timer: Any = None  # the batcher's timer that enforces it

    def answer(self, reply: Any) -> None:
        if self.wait is not None:
            self.reply = reply  # held until the batch's WAIT answers
        else:
            self.settle(result=(reply, None))

    def fail(self, exc: BaseException) -> None:
        self.settle(exc=exc)

    def settle(self, result: Any = None, exc: BaseException | None = None) -> None:
        if self.future.done():
            return  # cancelled, or past its deadline: the reply is dropped, its slot kept
        if exc is None:
            self.future.set_result(result)
        else:
            self.future.set_exception(exc)
        if self.deadline_timer is not None:
            self.deadline_timer.settled()


class Ack(NamedTuple):
    """What the `WAIT` closing a batch and the `ROLE` sent right behind it said: how many
    replicas acknowledged the batch, and which replicas were connected to the server as it
    answered (empty when `ROLE` did not say: not a master, or refused)."""

    acknowledged: int
    connected: frozenset[Address]

    @classmethod
    def of(cls, wait: Any, role: Any) -> Ack:
        """From the two replies (either may be an error)."""
        acknowledged = wait if isinstance(wait, int) else 0
        if not isinstance(role, list) or len(role) < 3 or role[0] != b"master":
            return cls(acknowledged, frozenset())
        # A master's ROLE lists its online replicas as [host, port, offset].
        return cls(acknowledged, frozenset((r[0].decode(), int(r[1])) for r in role[2]))


class Wait:
    """The `WAIT` closing a batch and the `ROLE` behind it (two replies, two slots): their
    `Ack` goes to every caller of the batch that asked for one."""

    __slots__ = ("answered", "calls", "expires", "wait_reply")

    def __init__(self, calls: list[Call]) -> None:
        self.calls = calls
        self.answered = False
        self.wait_reply: Any = None
        self.expires = 0.0

    def answer(self, reply: Any) -> None:
        if not self.answered:  # WAIT's reply; ROLE's comes next
            self.answered, self.wait_reply = True, reply
            return
        ack = Ack.of(self.wait_reply, reply)
        for call in self.calls:
            call.settle(result=(call.reply, ack))

    def fail(self, exc: BaseException) -> None:
        for call in self.calls:
            call.fail(exc)


class Pipe(asyncio.Protocol):
    """One connection. `on_writable` is called when it can take writes again: after the
    transport's buffer drained below its low-water mark, and once it closed (its owner
    reconnects for what is still queued)."""

    def __init__(
        self, address: Address, endpoint: Endpoint, on_writable: Callable[[], None]
    ) -> None:
        self.address = address
        self.endpoint = endpoint
        self.read_timeout = endpoint.read_timeout
        self.on_writable = on_writable
        self.reader = hiredis.Reader()
        self.slots: deque[Call | Wait] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.paused = False  # the transport's buffer is over its high-water mark
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, endpoint: Endpoint, on_writable: Callable[[], None]) -> Pipe:
        loop = asyncio.get_running_loop()
        address = await endpoint.current_address()
        pipe = cls(address, endpoint, on_writable)
        try:
            async with asyncio.timeout(endpoint.connect_timeout):
                if endpoint.path:
                    await loop.create_unix_connection(lambda: pipe, endpoint.path, ssl=endpoint.ssl)
                else:
                    host, port = address
                    await loop.create_connection(lambda: pipe, host, port, ssl=endpoint.ssl)
        except (OSError, TimeoutError) as exc:  # ssl.SSLError is an OSError
            where = endpoint.path or address
            raise rx.ConnectionError(f"cannot connect to Redis at {where}: {exc!r}") from exc
        try:
            await pipe._handshake(endpoint.handshake)
        except BaseException:  # refused, timed out or cancelled: leave no socket behind
            pipe.close()
            raise
        return pipe

    async def _handshake(self, commands: list[tuple[Any, ...]]) -> None:
        loop = asyncio.get_running_loop()
        calls = [Call(args, None, loop.create_future()) for args in commands]
        if calls:
            self.send(calls)
        for call in calls:
            reply, _ = await call.future
            if isinstance(reply, Exception):
                # Not AUTH's arguments: a password has no place in a log.
                name = " ".join(str(a) for a in call.args) if call.args[0] != "AUTH" else "AUTH"
                error = rx.AuthenticationError if call.args[0] == "AUTH" else rx.ConnectionError
                raise error(f"{name} refused: {reply}")

    def send(self, calls: list[Call]) -> None:
        """Write `calls` (and `WAIT`, `ROLE` after them if any asked for an `Ack`) in one
        write."""
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
            packed += (hiredis.pack_command(wait_args), _ROLE)
            closing = Wait(waits)
            closing.expires = expires + budget_ms / 1000
            self.slots += (closing, closing)
        self.transport.write(b"".join(packed))  # may call pause_writing before it returns
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
        self.endpoint.configure(transport.get_extra_info("socket"))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self.on_writable()

    def data_received(self, data: bytes) -> None:
        if self.closed and self.transport is None:
            return
        self.reader.feed(data)
        try:
            while (reply := self.reader.gets()) is not False:
                if isinstance(reply, hiredis.ReplyError):
                    reply = error_of(reply)
                    if isinstance(reply, _NOT_A_MASTER):
                        self.closed = True  # the next batch asks where the master is
                if not self.slots:
                    self.close(rx.ConnectionError(f"Redis at {self.address}: reply to no command"))
                    return
                self.slots.popleft().answer(reply)
        except hiredis.ProtocolError as exc:
            message = f"protocol error from Redis at {self.address}: {exc}"
            self.close(rx.ConnectionError(message))

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
            transport, self.transport = self.transport, None
            transport.abort()
            self.on_writable()  # what is still queued goes to a new connection
