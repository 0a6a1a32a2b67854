"""In-process session store with the same semantics as the Redis scripts.

For one process only (`make run`, unit tests): sessions are not shared between workers or
replicas and vanish on restart. `create_app` logs a loud warning when it is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import SessionEnded, SessionTooLarge
from .store import CommitRequest, CommitResult, Limits, SessionInfo, StoredSession

_SWEEP_EVERY = 1024  # commits between sweeps of expired entries
_RECENT_COMMITS = 16  # tokens remembered per session, as in commit.lua


@dataclass(slots=True)
class _Entry:
    created_ms: int
    deadline_ms: int
    idle_until_ms: int
    version: int = 0
    size: int = 0
    # Recent commits, token -> version: a retried commit is recognised even after others.
    recent: dict[str, int] = field(default_factory=dict)
    fields: dict[str, tuple[int, bytes]] = field(default_factory=dict)


def _stored_size(version: int, value: bytes) -> int:
    return len(str(version)) + 1 + len(value)  # as Redis stores it: '<version>:<json>'


class MemorySessionStore:
    single_process = True
    last_answered: float | None = None  # always answers: readiness never needs the grace

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._entries: dict[str, _Entry] = {}
        self._indexes: dict[str, dict[str, int]] = {}
        self._commits = 0

    def _live(self, key: str, now: int) -> _Entry | None:
        entry = self._entries.get(key)
        if entry and now >= min(entry.deadline_ms, entry.idle_until_ms):
            del self._entries[key]
            return None
        return entry

    def _slide(self, entry: _Entry, now: int) -> None:
        entry.idle_until_ms = min(now + self.limits.idle_ms, entry.deadline_ms)

    async def load(self, key: str) -> StoredSession | None:
        now = _now_ms()
        entry = self._live(key, now)
        if entry is None:
            return None
        self._slide(entry, now)
        return StoredSession(dict(entry.fields), entry.created_ms, entry.deadline_ms)

    async def commit(self, key: str, request: CommitRequest) -> CommitResult:
        now = _now_ms()
        entry = self._live(key, now)
        if entry is not None and request.token in entry.recent:
            return CommitResult(version=entry.recent[request.token])
        if (entry is None) != request.create:
            raise SessionEnded()
        if entry is None:
            entry = _Entry(now, now + self.limits.lifetime_ms, now)
        conflicts: dict[str, tuple[int, bytes] | None] = {}
        size = entry.size
        expected_versions = {name: exp for name, (exp, _) in request.sets.items()}
        expected_versions.update(request.deletes)
        for name, expected in expected_versions.items():
            current = entry.fields.get(name)
            if (current[0] if current else 0) != expected:
                conflicts[name] = current
            if current:
                size -= _stored_size(*current)
        if conflicts:
            return CommitResult(conflicts=conflicts)
        version = entry.version + 1
        size += sum(_stored_size(version, value) for _, value in request.sets.values())
        if size > self.limits.max_bytes:
            raise SessionTooLarge(
                f"session data would be {size} bytes, over the {self.limits.max_bytes} budget"
            )
        for name, (_, value) in request.sets.items():
            entry.fields[name] = (version, value)
        for name in request.deletes:
            entry.fields.pop(name, None)
        entry.version, entry.size = version, size
        entry.recent[request.token] = version
        if len(entry.recent) > _RECENT_COMMITS:
            del entry.recent[next(iter(entry.recent))]
        self._slide(entry, now)
        self._entries[key] = entry
        self._sweep(now)
        return CommitResult(version=version)

    def _sweep(self, now: int) -> None:
        self._commits += 1
        if self._commits % _SWEEP_EVERY == 0:
            for key in list(self._entries):
                self._live(key, now)

    async def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    async def index_add(self, user: str, key: str, expires_at_ms: int, cap: int) -> None:
        index = self._indexes.setdefault(user, {})
        index[key] = expires_at_ms
        excess = sorted(index, key=index.__getitem__)[: max(len(index) - cap, 0)]
        await self.index_remove(user, excess)
        await self.delete(excess)

    async def index_list(self, user: str) -> list[SessionInfo]:
        now = _now_ms()
        index = self._indexes.get(user, {})
        live: list[SessionInfo] = []
        for key in sorted(index, key=index.__getitem__):
            entry = self._live(key, now)
            if entry is None:
                del index[key]
            else:
                live.append(
                    SessionInfo(key, entry.created_ms, entry.deadline_ms, entry.idle_until_ms)
                )
        return live

    async def index_remove(self, user: str, keys: Sequence[str]) -> None:
        index = self._indexes.get(user, {})
        for key in keys:
            index.pop(key, None)

    async def count(self) -> int:
        now = _now_ms()
        return sum(self._live(key, now) is not None for key in list(self._entries))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._entries.clear()
        self._indexes.clear()


def _now_ms() -> int:
    return int(time.time() * 1000)
