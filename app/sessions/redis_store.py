"""Session store on Redis (standalone, behind Sentinel, or a Redis Cluster: see cluster.py).

Layout (every key one script touches shares a hash tag: on a cluster, one slot):
  sf:{<store key>}:s     hash: data fields '<version>:<json>' + metadata fields '#...'
  sf:{u:<user>}:idx      sorted set: store keys of a user's sessions, scored by end of life
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from importlib import resources
from typing import Any, NamedTuple, TypeVar

from opentelemetry import trace
from redis import exceptions as rx
from redis.asyncio import Redis

from .batching import CommandBatcher
from .census import Census, CensusCache, ReplicaCensus, master_named_by
from .cluster import ClusterCommands
from .connect import RedisConnection
from .deadline import deadline_for
from .errors import NotDurable, SessionEnded, SessionTooLarge
from .observer import NullObserver, SessionObserver, observed, span_factory
from .pipe import Ack
from .redis_retry import with_retry
from .store import (
    CommitRequest,
    CommitResult,
    Limits,
    SessionInfo,
    StoredSession,
    log_corrupt,
)

T = TypeVar("T")
# Index entries are pruned this long after their session's end of life: app clocks may lag
# the Redis clock that set it.
_INDEX_SKEW_MS = 60_000
_WAIT_MARGIN_MS = 50
# The span of a batched script call (what the redis-py instrumentation records for the
# store's other commands; no arguments: they hold session data).
_SPAN_ATTRIBUTES = {"db.system": "redis", "db.operation": "EVALSHA"}


class _Durable(NamedTuple):
    """What one durable write must reach: `replicas` acknowledgements, and with Sentinel the
    census they were counted from (which may prove the write safe without another)."""

    replicas: int
    census: ReplicaCensus | None = None


class _Script:
    def __init__(self, filename: str) -> None:
        self.source = resources.files(__package__).joinpath("lua", filename).read_text()
        self.sha = hashlib.sha1(self.source.encode()).hexdigest()  # noqa: S324 (Redis' script id)


_LOAD = _Script("load.lua")
_COMMIT = _Script("commit.lua")
_INDEX_ADD = _Script("index_add.lua")


def session_key(key: str) -> str:
    return f"sf:{{{key}}}:s"


def index_key(user: str) -> str:
    return f"sf:{{u:{user}}}:idx"


def parse_loaded(reply: Sequence[bytes]) -> StoredSession | None:
    """Decode load.lua's reply (created, end of life, then data fields and values); None when
    the metadata is missing or garbled (a corrupt entry)."""
    fields: dict[str, tuple[int, bytes]] = {}
    try:
        for i in range(2, len(reply), 2):
            version, _, payload = reply[i + 1].partition(b":")
            fields[reply[i].decode()] = (int(version), payload)
        return StoredSession(fields, created_ms=int(reply[0]), expires_at_ms=int(reply[1]))
    except (ValueError, IndexError, UnicodeDecodeError):
        return None


class RedisSessionStore:
    """Every command goes over one pipelined connection (`CommandBatcher`): the connection's
    (shared with the app's other Redis users) when given a `RedisConnection`, else one of the
    store's own to the server a redis-py client is configured for (the client itself sends
    nothing). With a `census`, that connection goes to the master it names: the master
    durable commits check."""

    single_process = False
    last_answered: float | None = None

    def __init__(
        self,
        connection: RedisConnection | Redis,
        limits: Limits,
        *,
        wait_replicas: int,
        wait_timeout_ms: int,
        deadline: float,
        observer: SessionObserver | None = None,
        census: Census | None = None,
    ) -> None:
        self.limits = limits
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.deadline = deadline
        self.observer = observer or NullObserver()
        if isinstance(connection, RedisConnection):
            self.batcher = connection.commands  # its owner's to close
            census = census if census is not None else connection.census
            self._own_batcher = False
        else:
            source = master_named_by(census) if census is not None else None
            self.batcher = CommandBatcher(connection, master_address=source)
            self._own_batcher = True
        self.census = CensusCache(observed(census, self.observer)) if census is not None else None
        self._span = span_factory()

    async def _retry(
        self, op: Callable[[], Awaitable[T]], name: str, *, batched: bool = False
    ) -> T:
        # `batched`: the op ends at the request's deadline by itself (its batched calls carry
        # it, its census queries go through `_within_deadline`): no timer around each attempt.
        result = await with_retry(
            op, self.deadline, name, self.observer.store_retry, op_keeps_deadline=batched
        )
        self.last_answered = time.monotonic()  # readiness counts traffic, not only probes
        return result

    async def _eval(
        self, script: _Script, key: str, *args: Any, durable: _Durable | None = None
    ) -> Any:
        """EVALSHA (falling back to EVAL once per server) plus, when `durable` is given, the
        acknowledgement of its batch by the replicas it requires: one round trip, shared with
        concurrent requests."""
        if durable is None:  # durable commits check the census themselves, before and after
            await self._on_named_master()
        replicas = durable.replicas if durable is not None else 0
        wait = (self._wait_budget_ms(), replicas) if durable is not None else None
        deadline = deadline_for(self.deadline)
        with self._span("EVALSHA", kind=trace.SpanKind.CLIENT, attributes=_SPAN_ATTRIBUTES) as span:
            call = self.batcher.call(
                "EVALSHA", script.sha, 1, key, *args, wait=wait, deadline=deadline
            )
            reply, ack = await call
            if isinstance(reply, rx.NoScriptError):
                # A fresh master after a failover, or a restart: send the script itself once.
                call = self.batcher.call(
                    "EVAL", script.source, 1, key, *args, wait=wait, deadline=deadline
                )
                reply, ack = await call
        if isinstance(reply, Exception):
            raise reply
        if durable is not None:
            span.set_attribute("redis.wait.replicas_acked", ack.acknowledged if ack else 0)
            span.set_attribute("redis.wait.replicas_required", replicas)
            await self._acknowledged(ack, durable)
        return reply

    async def _acknowledged(self, ack: Ack | None, durable: _Durable) -> None:
        """Raises `NotDurable` unless `ack` is enough: the replicas `durable` requires, and with
        Sentinel every replica it listed (see `ReplicaCensus.covered_by`), or else every one a
        census taken after the acknowledgement counts (no failover began meanwhile, none was
        missed)."""
        acked, required = (ack.acknowledged if ack else 0), durable.replicas
        proven = durable.census is not None and durable.census.covered_by(ack)
        if self.census is not None and acked >= required and not proven:
            after = await self._checked(await self._within_deadline(self.census.fresh()))
            required = max(required, after.replicas)
        if acked < required:
            self.observer.replica_ack_failed()
            raise NotDurable()

    async def _durable(self, key: str) -> _Durable:
        """What a durable write to `key` must reach: the configured minimum of replicas,
        raised to every replica Sentinel (or the cluster, for `key`'s shard) does not know to
        be down. Waiting for one replica is not enough: if another is promoted (a false alarm
        on a live master does that), a write the deposed master got acknowledged by the first
        is erased when it rejoins."""
        if isinstance(self.batcher, ClusterCommands):
            online = await self.batcher.live_replicas(key, deadline_for(self.deadline))
            return _Durable(max(self.wait_replicas, online))
        if self.census is None:
            return _Durable(self.wait_replicas)
        recent = self.census.cached() or await self._within_deadline(self.census.recent())
        census = await self._checked(recent)
        return _Durable(max(self.wait_replicas, census.replicas), census)

    async def _checked(self, census: ReplicaCensus | None) -> ReplicaCensus:
        """The census, if it allows acknowledging writes to the master this client uses.
        Raises `NotDurable` (retried) when no majority of Sentinels answered, a Sentinel sees
        the master down or failing over, or they name another master: nothing written to this
        one can be promised then."""
        if census is None:
            raise NotDurable("no majority of Sentinels answered")
        assert self.census is not None
        if census.failing_over:
            self.census.forget()
            raise NotDurable("a failover is under way")
        current = self.batcher.address
        if current is not None and current != census.master:
            self.census.forget()
            self.batcher.reconnect()  # the next batch asks the census for the master
            raise NotDurable("the master changed")
        return census

    async def _on_named_master(self) -> None:
        """Loads and non-durable commits, too, go only to the master the Sentinels name (a
        census at most `MAX_AGE` old): a deposed master that still takes itself for one would
        answer reads that hide writes the new master holds, and take writes it is about to
        lose. When no majority answers within the request's deadline, the call goes ahead:
        nothing better is known."""
        if self.census is None:
            return
        census = self.census.cached() or await self._within_deadline(self.census.recent())
        if census is None or self.batcher.address in (None, census.master):
            return
        # The cached answer may predate this connection: only a fresh one moves it.
        census = await self._within_deadline(self.census.fresh())
        if census is not None and self.batcher.address not in (None, census.master):
            self.batcher.reconnect()  # the next batch asks the census for the master
            raise rx.ConnectionError("the Sentinels name another master")

    async def _within_deadline(
        self, query: Awaitable[ReplicaCensus | None]
    ) -> ReplicaCensus | None:
        # The query is shared and shielded (see CensusCache): giving up on it cancels nothing.
        remaining = deadline_for(self.deadline) - time.monotonic()
        try:
            return await asyncio.wait_for(query, max(0.0, remaining))
        except TimeoutError:
            return None

    def _wait_budget_ms(self) -> int:
        # Let WAIT answer (with a count) before the request's deadline cuts the call off.
        left_ms = (deadline_for(self.deadline) - time.monotonic()) * 1000 - _WAIT_MARGIN_MS
        return max(1, min(self.wait_timeout_ms, int(left_ms)))

    async def load(self, key: str) -> StoredSession | None:
        load = partial(self._eval, _LOAD, session_key(key), self.limits.idle_ms)
        reply = await self._retry(load, "load", batched=True)
        if not reply:
            return None
        stored = parse_loaded(reply)
        if stored is None:
            log_corrupt(key, "unreadable metadata")
        return stored

    async def commit(self, key: str, request: CommitRequest) -> CommitResult:
        args: list[Any] = [
            request.token,
            "n" if request.create else "u",
            self.limits.idle_ms,
            self.limits.lifetime_ms,
            self.limits.max_bytes,
            len(request.sets),
        ]
        for name, (expected, value) in request.sets.items():
            args += (name, expected, value)
        for name, expected in request.deletes.items():
            args += (name, expected)
        durable = request.durable and self.wait_replicas > 0

        async def durable_commit() -> Any:
            durable = await self._durable(session_key(key))
            return await self._eval(_COMMIT, session_key(key), *args, durable=durable)

        if durable:  # its census queries, too, end at the deadline (`_within_deadline`)
            reply = await self._retry(durable_commit, "commit", batched=True)
        else:
            commit = partial(self._eval, _COMMIT, session_key(key), *args)
            reply = await self._retry(commit, "commit", batched=True)
        status = reply[0]
        if status == 1:
            return CommitResult(version=int(reply[1]))
        if status == -1:
            raise SessionEnded()
        if status == -2:
            raise SessionTooLarge(
                f"session data would be {reply[1]} bytes, over the {self.limits.max_bytes} budget"
            )
        conflicts: dict[str, tuple[int, bytes] | None] = {}
        for i in range(1, len(reply), 2):
            version, _, payload = reply[i + 1].partition(b":")
            conflicts[reply[i].decode()] = (int(version), payload) if reply[i + 1] else None
        return CommitResult(conflicts=conflicts)

    async def _commands(self, *commands: tuple[Any, ...]) -> list[Any]:
        """`commands` sent together (one write, one round trip, no MULTI: other callers'
        commands may fall between them), within the request's deadline. Raises the first
        error reply; a lost connection raises `ConnectionError` for every one."""
        deadline = deadline_for(self.deadline)
        names = " ".join(dict.fromkeys(str(args[0]) for args in commands))
        attributes = {"db.system": "redis", "db.operation": names}
        with self._span(names, kind=trace.SpanKind.CLIENT, attributes=attributes):
            calls = [self.batcher.call(*args, deadline=deadline) for args in commands]
            replies = [reply for reply, _ in await asyncio.gather(*calls)]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def _command(self, *args: Any) -> Any:
        [reply] = await self._commands(args)
        return reply

    async def delete(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        # One DEL per key (keys live in different hash slots), sent together. Durable like a
        # commit: a DEL a failover lost would bring a logged-out session back.
        if not self.wait_replicas:
            dels = [("DEL", session_key(key)) for key in keys]
            await self._retry(partial(self._commands, *dels), "delete")
            return
        stored = [session_key(key) for key in keys]

        async def durable_delete() -> None:
            required = [await self._durable(key) for key in stored]
            budget, deadline = self._wait_budget_ms(), deadline_for(self.deadline)
            calls = [
                self.batcher.call("DEL", key, wait=(budget, durable.replicas), deadline=deadline)
                for key, durable in zip(stored, required, strict=True)
            ]
            replies = await asyncio.gather(*calls)
            for (reply, ack), durable in zip(replies, required, strict=True):
                if isinstance(reply, Exception):
                    raise reply
                await self._acknowledged(ack, durable)

        await self._retry(durable_delete, "delete")

    async def index_add(self, user: str, key: str, expires_at_ms: int, cap: int) -> None:
        """Durable like a commit (it goes first at login): an entry lost in a failover would
        hide a live session from logout-everywhere."""
        prune_before = _now_ms() - _INDEX_SKEW_MS
        expire_at = expires_at_ms + _INDEX_SKEW_MS
        idx = index_key(user)
        args = (key, expires_at_ms, prune_before, expire_at, cap)

        async def add() -> list[bytes]:
            if not self.wait_replicas:
                return await self._eval(_INDEX_ADD, idx, *args)  # type: ignore[no-any-return]
            durable = await self._durable(idx)
            return await self._eval(_INDEX_ADD, idx, *args, durable=durable)  # type: ignore[no-any-return]

        evicted = await self._retry(add, "index_add")
        await self.delete([member.decode() for member in evicted])

    async def index_list(self, user: str) -> list[SessionInfo]:
        idx = index_key(user)

        async def op() -> list[SessionInfo]:
            members = [m.decode() for m in await self._command("ZRANGE", idx, 0, -1)]
            if not members:
                return []
            reads: list[tuple[Any, ...]] = []
            for member in members:
                reads += [("HMGET", session_key(member), "#c", "#a"), ("PTTL", session_key(member))]
            replies = await self._commands(*reads)
            now = _now_ms()
            live, gone = [], []
            for i, member in enumerate(members):
                (created, end), ttl = replies[2 * i], replies[2 * i + 1]
                if created is None or end is None or ttl < 0:
                    gone.append(member)
                    continue
                live.append(SessionInfo(member, int(created), int(end), now + ttl))
            if gone:
                await self._command("ZREM", idx, *gone)
            return live

        return await self._retry(op, "index_list")

    async def index_remove(self, user: str, keys: Sequence[str]) -> None:
        if keys:
            await self._retry(
                partial(self._command, "ZREM", index_key(user), *keys), "index_remove"
            )

    async def count(self) -> int:
        async def scan(node: Any) -> int:
            cursor, keys = b"0", 0
            while True:  # SCAN by SCAN: between them other callers' commands go out
                reply, _ = await node.call("SCAN", cursor, "MATCH", session_key("*"), "COUNT", 1000)
                if isinstance(reply, Exception):
                    raise reply
                cursor, found = reply
                keys += len(found)
                if cursor == b"0":
                    return keys

        async def op() -> int:
            if not isinstance(self.batcher, ClusterCommands):
                return await scan(self.batcher)
            masters = self.batcher.masters() or await self.batcher.mapped_masters()
            counts = await asyncio.gather(*(scan(self.batcher.node(m)) for m in masters))
            return sum(counts)

        return await self._retry(op, "count")

    async def ping(self) -> None:
        await self._retry(self._check_writable_master, "ping")

    async def _check_writable_master(self) -> None:
        # Whoever named the node (Sentinel, a URL), ask the node itself.
        role = await self._command("ROLE")
        if role[0] != b"master":
            self.batcher.reconnect()  # the next command asks where the master is again
            raise rx.ReadOnlyError("READONLY connected node is not a master")

    async def close(self) -> None:
        """Closes the store's own connection, if it made one; a `RedisConnection` it was
        given is its owner's."""
        if self._own_batcher:
            await self.batcher.close()


def _now_ms() -> int:
    return int(time.time() * 1000)
