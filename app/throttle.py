"""Login failure throttling per user and per client address (fixed windows).

Counters live in Redis when Redis is configured (shared by every replica), else in memory.
"""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from redis.asyncio import Redis

from .sessions.redis_retry import with_retry


class Counters(Protocol):
    async def read(self, keys: list[str]) -> list[tuple[int, int]]:
        """(count, milliseconds until reset) per key; (0, 0) for an absent key."""

    async def hit(self, key: str, window_ms: int) -> None: ...

    async def clear(self, key: str) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[int, float]] = {}

    def _get(self, key: str) -> tuple[int, float]:
        count, until = self._counts.get(key, (0, 0.0))
        if until <= time.monotonic():
            self._counts.pop(key, None)
            return 0, 0.0
        return count, until

    async def read(self, keys: list[str]) -> list[tuple[int, int]]:
        now = time.monotonic()
        return [(c, int((u - now) * 1000)) if c else (0, 0) for c, u in map(self._get, keys)]

    async def hit(self, key: str, window_ms: int) -> None:
        count, until = self._get(key)
        self._counts[key] = (count + 1, until or time.monotonic() + window_ms / 1000)

    async def clear(self, key: str) -> None:
        self._counts.pop(key, None)


class RedisCounters:
    def __init__(self, client: Redis, deadline: float) -> None:
        self.client = client
        self.deadline = deadline

    async def read(self, keys: list[str]) -> list[tuple[int, int]]:
        async def op() -> list[tuple[int, int]]:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.get(key)
                    pipe.pttl(key)
                replies = await pipe.execute()
            pairs = zip(replies[::2], replies[1::2], strict=True)
            return [(int(c), max(ttl, 0)) if c is not None else (0, 0) for c, ttl in pairs]

        return await with_retry(op, self.deadline, "throttle_read")

    async def hit(self, key: str, window_ms: int) -> None:
        async def op() -> None:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.pexpire(key, window_ms, nx=True)
                await pipe.execute()

        await with_retry(op, self.deadline, "throttle_hit")

    async def clear(self, key: str) -> None:
        await with_retry(lambda: self.client.delete(key), self.deadline, "throttle_clear")


class LoginThrottle:
    def __init__(
        self, counters: Counters, *, per_user: int, per_client: int, window_s: int
    ) -> None:
        self.counters = counters
        self.limits = (per_user, per_client)
        self.window_ms = window_s * 1000

    @staticmethod
    def _keys(username: str, client: str) -> list[str]:
        # Hashed: bounded key length, and no user name or address in clear in the store.
        def digest(text: str) -> str:
            return hashlib.sha256(text.encode()).hexdigest()[:24]

        return [f"sf:{{rl:u:{digest(username)}}}", f"sf:{{rl:c:{digest(client)}}}"]

    async def blocked_for(self, username: str, client: str) -> int:
        """Seconds until this user/client may try again; 0 when not blocked."""
        readings = await self.counters.read(self._keys(username, client))
        pairs = zip(readings, self.limits, strict=True)
        waits = [ttl for (count, ttl), limit in pairs if count >= limit]
        return max(1, -(-max(waits) // 1000)) if waits else 0

    async def record_failure(self, username: str, client: str) -> None:
        for key in self._keys(username, client):
            await self.counters.hit(key, self.window_ms)

    async def record_success(self, username: str, client: str) -> None:
        await self.counters.clear(self._keys(username, client)[0])
