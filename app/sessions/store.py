"""What a session store must do, and the values that cross that boundary.

Stores are keyed by `store_key_of(id)` and hold, per session, named fields each with the
version of the commit that last wrote it. A commit names the version it expects for every
field it writes; one mismatch and nothing is written (optimistic concurrency per key).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


def log_corrupt(key: str, why: str) -> None:
    """Corrupt entries are treated as missing; say so (with a key prefix, never an ID)."""
    log.warning("corrupt session %s... treated as missing: %s", key[:12], why)


@dataclass(frozen=True, slots=True)
class Limits:
    idle_ms: int
    lifetime_ms: int
    max_bytes: int


@dataclass(slots=True)
class StoredSession:
    fields: dict[str, tuple[int, bytes]]  # key -> (version, JSON bytes)
    created_ms: int
    expires_at_ms: int  # absolute end of life


@dataclass(slots=True)
class CommitRequest:
    token: str  # makes a retried commit idempotent
    create: bool  # True: the key must not exist yet; False: it must still exist
    sets: dict[str, tuple[int, bytes]] = field(default_factory=dict)  # key -> (expected, value)
    deletes: dict[str, int] = field(default_factory=dict)  # key -> expected version
    durable: bool = True  # wait for replica acknowledgement (when the store has replicas)


@dataclass(slots=True)
class CommitResult:
    version: int = 0  # new version stamped on every written key (0 when conflicted)
    conflicts: dict[str, tuple[int, bytes] | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.conflicts


@dataclass(frozen=True, slots=True)
class SessionInfo:
    key: str
    created_ms: int
    expires_at_ms: int  # absolute end of life
    idle_expires_at_ms: int


class SessionStore(Protocol):
    """Every method raises `StoreUnavailable` when the store cannot answer in time."""

    single_process: bool  # True: state lives in this process only
    # `time.monotonic()` of the last call the store answered (any call, readiness probe or
    # traffic); None before the first.
    last_answered: float | None

    async def load(self, key: str) -> StoredSession | None:
        """The session, its idle expiry slid forward (one round trip); None if absent/expired."""

    async def commit(self, key: str, request: CommitRequest) -> CommitResult:
        """Apply atomically (one round trip + replica wait). Raises `SessionEnded` when an
        update targets a session that no longer exists, `SessionTooLarge` past the budget,
        `NotDurable` when replicas did not acknowledge in time."""

    async def delete(self, keys: Sequence[str]) -> None: ...

    async def index_add(self, user: str, key: str, expires_at_ms: int, cap: int) -> None:
        """Record `key` under `user`; prune ended entries; sign out the oldest beyond `cap`."""

    async def index_list(self, user: str) -> list[SessionInfo]:
        """The user's live sessions, oldest first; entries whose session is gone are pruned."""

    async def index_remove(self, user: str, keys: Sequence[str]) -> None: ...

    async def count(self) -> int:
        """How many sessions the store holds (a full scan: for metrics, not request paths)."""

    async def ping(self) -> None: ...

    async def close(self) -> None: ...
