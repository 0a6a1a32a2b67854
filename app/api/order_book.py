"""Placed orders, kept outside the session so they never eat the cart's byte budget.

The session keeps only each checkout's idempotency key and order ID (a few dozen bytes, a
bounded number); the order itself lives here, one entry per order, for as long as a session
may live (a replay arrives through a session, so its order outlives none). In Redis an order is
written, and acknowledged by replicas, before the checkout commits the session: a commit that
then fails leaves an order nobody references, never a reference to a missing order.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from ..sessions import NotDurable, RedisConnection, with_retry


class OrderBook(Protocol):
    async def put(self, user: str, order: dict[str, Any]) -> None:
        """Keep `order` (with an `order_id`); raises `StoreUnavailable` / `NotDurable`."""

    async def get(self, user: str, order_id: str) -> dict[str, Any] | None: ...


class MemoryOrderBook:
    def __init__(self, retention_s: int) -> None:
        self.retention_s = retention_s
        self._orders: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}

    async def put(self, user: str, order: dict[str, Any]) -> None:
        now = time.monotonic()
        self._orders = {k: v for k, v in self._orders.items() if v[0] > now}
        self._orders[(user, order["order_id"])] = (now + self.retention_s, order)

    async def get(self, user: str, order_id: str) -> dict[str, Any] | None:
        until, order = self._orders.get((user, order_id), (0.0, None))
        return order if until > time.monotonic() else None


class RedisOrderBook:
    """Orders on the session store's connection (the same master, the same pipelined
    connection)."""

    def __init__(
        self,
        redis: RedisConnection,
        *,
        retention_s: int,
        wait_replicas: int,
        wait_timeout_ms: int,
        deadline: float,
    ) -> None:
        self.redis = redis
        self.retention_ms = retention_s * 1000
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.deadline = deadline

    @staticmethod
    def _key(user: str, order_id: str) -> str:
        # The user's hash tag, as the session index's: a user's orders share its slot.
        return f"sf:{{u:{user}}}:order:{order_id}"

    async def put(self, user: str, order: dict[str, Any]) -> None:
        key, body = self._key(user, order["order_id"]), orjson.dumps(order)

        wait = (self.wait_timeout_ms, self.wait_replicas) if self.wait_replicas else None

        async def op() -> None:
            # The WAIT closing the batch this SET goes out in acknowledges it.
            _, ack = await self.redis.call("SET", key, body, "PX", self.retention_ms, wait=wait)
            if wait is not None and (ack.acknowledged if ack else 0) < self.wait_replicas:
                raise NotDurable()

        await with_retry(op, self.deadline, "order_put")

    async def get(self, user: str, order_id: str) -> dict[str, Any] | None:
        key = self._key(user, order_id)

        async def op() -> Any:
            raw, _ = await self.redis.call("GET", key)
            return raw

        raw = await with_retry(op, self.deadline, "order_get")
        return orjson.loads(raw) if raw else None
