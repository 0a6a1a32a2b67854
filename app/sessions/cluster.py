"""Redis Cluster: each command goes to the master of its key's hash slot, over one pipelined
connection per master (`CommandBatcher`, as with Sentinel: the same wire, the same batching,
the same `WAIT` closing a batch).

Where the slots are comes from `CLUSTER SHARDS`, asked of any node that answers (the ones
already known first, then the start-up nodes). A `MOVED` reply (the slot has a new owner:
a failover, or resharding finished) is followed at once and the whole map asked again; an
`ASK` reply (the slot is being migrated and the key already left) is followed once, to the
node named, with `ASKING` just before the command on the same connection. Both are followed
within the caller's deadline, at most `MAX_REDIRECTS` times. A master that stops answering
makes the map stale too: the caller's retry asks where its slot went.

Durable commits ask `live_replicas()`: the replicas of the slot's shard the cluster does not
know to have failed, from a map at most `MAX_AGE` old. A commit must be acknowledged by every
one of them (and at least the configured minimum): if the cluster promotes one, it holds the
write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rx
from redis.asyncio import Redis
from redis.crc import key_slot

from .batching import CommandBatcher
from .endpoint import Address
from .pipe import Ack

log = logging.getLogger(__name__)

SLOTS = 16384
MAX_REDIRECTS = 5
MAX_AGE = 1.0  # seconds a map may be used to count a shard's replicas
# Commands whose first argument is not a key (they go to any master).
_KEYLESS = frozenset({"PING", "ROLE", "INFO", "SCAN", "WAIT", "DBSIZE", "CLUSTER", "SCRIPT"})


@dataclass(frozen=True, slots=True)
class Shard:
    master: Address
    live_replicas: int
    slots: tuple[tuple[int, int], ...]


def key_of(args: Sequence[Any]) -> Any:
    """The key a command's slot is taken from (None: it has none)."""
    name = str(args[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        return args[3] if int(args[2]) > 0 else None
    if name in _KEYLESS or len(args) < 2:
        return None
    return args[1]


def slot_of(key: str | bytes) -> int:
    return int(key_slot(key.encode() if isinstance(key, str) else key))


def _pairs(flat: Sequence[Any]) -> dict[str, Any]:
    items = iter(flat)
    return {_text(k): v for k, v in zip(items, items, strict=True)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def parse_shards(reply: Sequence[Any], tls: bool = False) -> list[Shard]:
    """`CLUSTER SHARDS` (RESP2) as shards that own slots and have a master. A node's address is
    its preferred endpoint (the hostname it announces, when the cluster prefers hostnames: the
    name `MOVED` replies use), else its IP."""
    shards = []
    for raw in reply:
        shard = _pairs(raw)
        bounds = [int(b) for b in shard.get("slots", [])]
        ranges = tuple(zip(bounds[::2], bounds[1::2], strict=True))
        master, online = None, 0
        for node in (_pairs(n) for n in shard.get("nodes", [])):
            endpoint = _text(node.get("endpoint", b""))
            host = endpoint if endpoint not in ("", "?") else _text(node.get("ip", b""))
            port = int(node.get("tls-port" if tls else "port", node.get("port", 0)))
            role, health = _text(node.get("role", b"")), _text(node.get("health", b""))
            if role == "master" and health != "failed":
                master = (host, port)
            elif role == "replica" and health != "failed":
                online += 1  # "loading" too: one still syncing may be promoted all the same
        if ranges and master is not None:
            shards.append(Shard(master, online, ranges))
    return shards


def _ignore(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()  # retrieved: a failed ASKING is seen again on the command after it


class ClusterCommands:
    """The session store's connection to a Redis Cluster: `call()` as `CommandBatcher.call()`,
    routed by the command's key. `client` says how to connect (credentials, TLS, timeouts);
    `startup`, where to ask first."""

    address: Address | None = None  # several masters: no single one to check a census against

    def __init__(
        self,
        client: Redis,
        startup: Sequence[Address],
        *,
        tls: bool = False,
    ) -> None:
        if not startup:
            raise ValueError("a Redis Cluster needs at least one start-up node")
        self.client = client
        self.startup = list(startup)
        self.tls = tls
        self.shards: list[Shard] = []
        self._slots: list[Address | None] = [None] * SLOTS
        self._nodes: dict[Address, CommandBatcher] = {}
        self._mapped_at = float("-inf")
        self._refresh: asyncio.Task[None] | None = None
        self._closed = False

    def masters(self) -> list[Address]:
        return [shard.master for shard in self.shards]

    async def mapped_masters(self) -> list[Address]:
        """The masters, once the cluster was asked (none if no node answered)."""
        await self._mapped(None)
        return self.masters()

    def node(self, address: Address) -> CommandBatcher:
        """The pipelined connection to one node (made on first use)."""
        node = self._nodes.get(address)
        if node is None:

            async def where() -> Address:
                return address

            node = CommandBatcher(self.client, master_address=where)
            self._nodes[address] = node
        return node

    def call(
        self, *args: Any, wait: tuple[int, int] | None = None, deadline: float | None = None
    ) -> Awaitable[tuple[Any, Ack | None]]:
        key = key_of(args)
        return self._routed(args, None if key is None else slot_of(key), wait, deadline)

    async def _routed(
        self,
        args: tuple[Any, ...],
        slot: int | None,
        wait: tuple[int, int] | None,
        deadline: float | None,
    ) -> tuple[Any, Ack | None]:
        target = self._slots[slot] if slot is not None else self._any_master()
        asking = False
        for _ in range(MAX_REDIRECTS + 1):
            if target is None:
                target = await self._master_of(slot, deadline)
            node = self.node(target)
            if asking:
                node.call("ASKING", deadline=deadline).add_done_callback(_ignore)
            try:
                reply, ack = await node.call(*args, wait=wait, deadline=deadline)
            except (rx.ConnectionError, rx.TimeoutError):
                self._stale()  # a master gone: the retry asks where the slot went
                raise
            if isinstance(reply, rx.MovedError):
                self._slots[reply.slot_id] = reply.node_addr
                self._stale()  # one slot moved: others likely did too (a failover)
                target, asking = reply.node_addr, False
            elif isinstance(reply, rx.AskError):
                target, asking = reply.node_addr, True
            else:
                if isinstance(reply, rx.ClusterDownError | rx.ReadOnlyError):
                    self._stale()
                return reply, ack
        return rx.TryAgainError(f"TRYAGAIN more than {MAX_REDIRECTS} redirections"), None

    def _any_master(self) -> Address | None:
        return self.shards[0].master if self.shards else None

    async def _master_of(self, slot: int | None, deadline: float | None) -> Address:
        await self._mapped(deadline)
        target = self._slots[slot] if slot is not None else self._any_master()
        if target is None:
            raise rx.ConnectionError(f"no node of the cluster names a master for slot {slot}")
        return target

    async def live_replicas(self, key: str, deadline: float | None = None) -> int:
        """Replicas of `key`'s shard the cluster does not know to have failed (a map at most
        `MAX_AGE` old)."""
        if time.monotonic() - self._mapped_at > MAX_AGE:
            await self._mapped(deadline)
        master = self._slots[slot_of(key)]
        return next((s.live_replicas for s in self.shards if s.master == master), 0)

    def _stale(self) -> None:
        self._mapped_at = float("-inf")
        self._start_refresh()

    def _start_refresh(self) -> asyncio.Task[None]:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(self._ask_map())
        return self._refresh

    async def _mapped(self, deadline: float | None) -> None:
        """Wait (at most until `deadline`) for a map asked for after now."""
        task = self._start_refresh()
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        # Shielded: a caller cut off by its deadline leaves the query to the others.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), remaining)

    async def _ask_map(self) -> None:
        asked = dict.fromkeys([*self.masters(), *self.startup])
        last: BaseException | None = None
        for address in asked:
            if self._closed:
                return
            node = self.node(address)
            budget = node.endpoint.connect_timeout + node.endpoint.read_timeout
            try:
                reply, _ = await node.call("CLUSTER", "SHARDS", deadline=time.monotonic() + budget)
                if isinstance(reply, Exception):
                    raise reply
                shards = parse_shards(reply, self.tls)
            except (rx.RedisError, OSError, ValueError) as exc:
                last = exc
                continue
            if shards:
                self._apply(shards)
                return
        log.warning("no node of the Redis Cluster answered CLUSTER SHARDS: %r", last)

    def _apply(self, shards: list[Shard]) -> None:
        slots: list[Address | None] = [None] * SLOTS
        for shard in shards:
            for first, last in shard.slots:
                slots[first : last + 1] = [shard.master] * (last - first + 1)
        self._slots, self.shards = slots, shards
        self._mapped_at = time.monotonic()

    def reconnect(self) -> None:
        for node in self._nodes.values():
            node.reconnect()
        self._stale()

    async def close(self) -> None:
        self._closed = True
        if self._refresh is not None:
            self._refresh.cancel()
        for node in list(self._nodes.values()):
            await node.close()
