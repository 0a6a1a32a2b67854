"""Login throttling: exponential backoff per user and per client address, and known devices.

Each failed login counts against the user name and the client address. Past a number of free
failures each further one locks the name (or address) for a while that doubles with every
failure, up to a cap: a guesser slows to a crawl, while a person who mistyped waits seconds,
not a 15-minute wall. A browser that has logged in as a user before carries a device token
(OWASP's "device cookie"): its attempts for that user count against the pair (user, device)
only, so an attacker failing as that user from elsewhere cannot lock the owner out of a device
they use. Counters live in Redis when Redis is configured (shared by every replica), else in
memory. Names, addresses and tokens reach the store only as digests.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from ..sessions import RedisConnection, with_retry

DEVICE_TOKEN_BYTES = 32


@dataclass(frozen=True, slots=True)
class Backoff:
    free: int  # failures allowed before any lock
    first_ms: int  # the lock after the last free failure
    max_ms: int  # locks double up to this

    def lock_ms(self, failures: int) -> int:
        if failures < self.free:
            return 0
        return int(min(self.first_ms * 2 ** min(failures - self.free, 40), self.max_ms))


class ThrottleStore(Protocol):
    async def locked_ms(self, keys: list[str]) -> int:
        """The longest lock still running on any of `keys`, in ms (0: none)."""

    async def fail(self, key: str, backoff: Backoff, window_ms: int) -> None:
        """Count a failure (forgotten after `window_ms` without another) and lock `key` for
        what `backoff` says."""

    async def clear(self, keys: list[str]) -> None: ...

    async def remember(self, key: str, ttl_ms: int) -> None: ...

    async def known(self, key: str) -> bool: ...


class MemoryThrottleStore:
    def __init__(self) -> None:
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (count, forgotten at)
        self._until: dict[str, float] = {}  # locks and remembered devices: key -> end

    def _left_ms(self, key: str) -> int:
        left = self._until.get(key, 0.0) - time.monotonic()
        if left <= 0:
            self._until.pop(key, None)
            return 0
        return int(left * 1000)

    async def locked_ms(self, keys: list[str]) -> int:
        return max(self._left_ms(f"lock:{key}") for key in keys)

    async def fail(self, key: str, backoff: Backoff, window_ms: int) -> None:
        now = time.monotonic()
        count, forgotten_at = self._failures.get(key, (0, 0.0))
        count = count + 1 if forgotten_at > now else 1
        self._failures[key] = (count, now + window_ms / 1000)
        if lock := backoff.lock_ms(count):
            self._until[f"lock:{key}"] = now + lock / 1000

    async def clear(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)
            self._until.pop(f"lock:{key}", None)

    async def remember(self, key: str, ttl_ms: int) -> None:
        self._until[f"known:{key}"] = time.monotonic() + ttl_ms / 1000

    async def known(self, key: str) -> bool:
        return self._left_ms(f"known:{key}") > 0


# KEYS: failures, lock. ARGV: window ms, free failures, first lock ms, max lock ms.
_FAIL = """
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local free, first, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if n >= free then
  local lock = math.min(first * 2 ^ math.min(n - free, 40), cap)
  redis.call('SET', KEYS[2], 1, 'PX', math.floor(lock))
end
return n
"""


class RedisThrottleStore:
    """Counters on the session store's connection (the same master, the same pipelined
    connection: one decision about where Redis is)."""

    def __init__(self, redis: RedisConnection, deadline: float) -> None:
        self.redis = redis
        self.deadline = deadline

    @staticmethod
    def _key(key: str, part: str) -> str:
        return f"sf:{{rl:{key}}}:{part}"

    async def _call(self, *args: Any) -> Any:
        reply, _ = await self.redis.call(*args)
        return reply

    async def locked_ms(self, keys: list[str]) -> int:
        async def op() -> int:
            # Sent in one batch (one round trip), each key on its own (its own hash slot).
            ttls: list[int] = await asyncio.gather(
                *(self._call("PTTL", self._key(k, "lock")) for k in keys)
            )
            return max(0, *ttls)

        return await with_retry(op, self.deadline, "throttle_read")

    async def fail(self, key: str, backoff: Backoff, window_ms: int) -> None:
        # EVAL, not EVALSHA: a failed login is rare enough to send the script each time.
        keys = [self._key(key, "n"), self._key(key, "lock")]
        args = [window_ms, backoff.free, backoff.first_ms, backoff.max_ms]
        await with_retry(
            lambda: self._call("EVAL", _FAIL, len(keys), *keys, *args),
            self.deadline,
            "throttle_fail",
        )

    async def clear(self, keys: list[str]) -> None:
        names = [self._key(key, part) for key in keys for part in ("n", "lock")]
        await with_retry(lambda: self._call("DEL", *names), self.deadline, "throttle_clear")

    async def remember(self, key: str, ttl_ms: int) -> None:
        name = self._key(key, "known")
        await with_retry(
            lambda: self._call("SET", name, 1, "PX", ttl_ms), self.deadline, "throttle_remember"
        )

    async def known(self, key: str) -> bool:
        name = self._key(key, "known")
        found = await with_retry(
            lambda: self._call("EXISTS", name), self.deadline, "throttle_known"
        )
        return bool(found)


def _digest(*parts: str) -> str:
    # Bounded key length, and no user name, address or token in clear in the store.
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One login attempt's place in the throttle: the counters it is charged to."""

    user: str
    device: str | None  # the device token, when this browser is known for this user
    keys: list[str]
    wait_s: int  # seconds until an attempt may be made (0: now)


class LoginThrottle:
    def __init__(
        self,
        store: ThrottleStore,
        *,
        per_user: Backoff,
        per_client: Backoff,
        window_s: int,
        device_days: int,
    ) -> None:
        self.store = store
        self.per_user = per_user
        self.per_client = per_client
        self.window_ms = window_s * 1000
        self.device_ttl_ms = device_days * 86_400_000

    async def attempt(self, user: str, client: str, device: str | None) -> Attempt:
        """Where an attempt by `user` from `client` with a device token (if any) stands."""
        if device and await self.store.known(_digest("known", user, device)):
            keys = [_digest("ud", user, device)]
        else:
            device = None
            keys = [_digest("u", user), _digest("c", client)]
        wait_ms = await self.store.locked_ms(keys)
        return Attempt(user, device, keys, -(-wait_ms // 1000))

    async def failed(self, attempt: Attempt) -> None:
        if attempt.device:
            await self.store.fail(attempt.keys[0], self.per_user, self.window_ms)
            return
        user_key, client_key = attempt.keys
        await self.store.fail(user_key, self.per_user, self.window_ms)
        await self.store.fail(client_key, self.per_client, self.window_ms)

    async def succeeded(self, attempt: Attempt) -> str:
        """Clear the user's failures and remember this device for the user; returns the
        device token the browser should keep (its own, or a new one)."""
        token = attempt.device or secrets.token_urlsafe(DEVICE_TOKEN_BYTES)
        # The client address keeps its count: logging in to one's own account must not wash
        # out failures against others.
        await self.store.clear(attempt.keys[:1])
        await self.store.remember(_digest("known", attempt.user, token), self.device_ttl_ms)
        return token
