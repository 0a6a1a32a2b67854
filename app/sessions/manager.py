"""Loads and commits `Session`s against a `SessionStore`: rotation, invalidation, conflict
re-application and the per-user index."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson

from .cookies import CookiePolicy, new_session_id, store_key_of
from .errors import SessionConflict
from .observer import NullObserver, SessionObserver, key_prefix, span_factory
from .session import Session
from .store import CommitRequest, SessionInfo, SessionStore, StoredSession, log_corrupt

# A request re-applies its `apply` updates at most this often before answering 409; a short
# random pause between attempts lets a burst of same-session requests spread out.
MAX_COMMIT_ATTEMPTS = 32
_CONFLICT_PAUSE_S = 0.002


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def acquire(self, key: str) -> None:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            await lock.acquire()
        except BaseException:
            self._left(key, users)
            raise

    def release(self, key: str) -> None:
        lock, users = self._locks[key]
        lock.release()
        self._left(key, users)

    def _left(self, key: str, users: list[int]) -> None:
        users[0] -= 1
        if not users[0]:
            del self._locks[key]


@dataclass(frozen=True, slots=True)
class SessionConfig:
    lifetime_s: int
    max_sessions_per_user: int = 100
    durable_writes: bool = True  # wait for replicas on every commit (logins always wait)


class SessionManager:
    def __init__(
        self,
        store: SessionStore,
        cookies: CookiePolicy,
        config: SessionConfig,
        observer: SessionObserver | None = None,
    ) -> None:
        self.store = store
        self.cookies = cookies
        self.config = config
        self.observer = observer or NullObserver()
        self._commit_locks = KeyedLocks()
        self._span = span_factory()

    def new_session(self, session_id: str | None) -> Session:
        return Session(self, session_id)

    async def load(self, session: Session) -> None:
        started = time.perf_counter()
        with self._span("session.load") as current:
            current.set_attribute("session.key_prefix", key_prefix(session.key))
            stored = await self.store.load(session.key) if session.key else None
            decoded = _decode(session.key, stored) if stored else None
            found = stored is not None and decoded is not None
            current.set_attribute("session.found", found)
            self.observer.loaded(time.perf_counter() - started, found)
            if stored is None or decoded is None:
                session.not_found()
                return
            session.found(*decoded, stored.created_ms, stored.expires_at_ms)
            current.set_attribute("session.keys", len(session.data))

    async def save(self, session: Session) -> None:
        if not session.dirty:
            return
        mode = _mode_of(session)
        started = time.perf_counter()
        with self._span("session.commit") as current:
            current.set_attribute("session.mode", mode)
            current.set_attribute("session.keys_changed", len(session.changed))
            current.set_attribute("session.key_prefix", key_prefix(session.key))
            try:
                conflicts = await self._save(session)
            except Exception:
                # Nothing more is committed for this request: the middleware must not try again.
                session.discard_changes()
                raise
            current.set_attribute("session.conflicts", conflicts)
            if mode in ("create", "rotate"):
                current.set_attribute("session.new_key_prefix", key_prefix(session.key))
            self.observer.committed(time.perf_counter() - started, mode, conflicts)

    async def _save(self, session: Session) -> int:
        """Commit; returns how many concurrent-change conflicts were re-applied."""
        if session.invalidated:
            key, user = session.invalidated
            await self.store.delete([key])
            if user:
                await self.store.index_remove(user, [key])
            session.ended()
        if session.rotate_requested or (session.changed and not session.exists):
            if session.data or session.exists:
                await self._create(session)
            else:
                session.committed(0)  # nothing to store: an emptied anonymous session
        elif session.changed:
            return await self._update(session)
        return 0

    async def _create(self, session: Session) -> None:
        """Write all data under a fresh ID, then retire the old one (rotation)."""
        old_key, user = (session.key if session.exists else None), session.user_id
        new_id = new_session_id()
        new_key = store_key_of(new_id)
        if user:
            # Index first: a crash after it leaves an entry the index prunes by itself,
            # whereas a session missing from its index could not be listed or revoked.
            expires = int(time.time() * 1000) + self.config.lifetime_s * 1000
            await self.store.index_add(user, new_key, expires, self.config.max_sessions_per_user)
        request = CommitRequest(
            token=secrets.token_hex(8),
            create=True,
            sets={name: (0, _encode(value)) for name, value in session.data.items()},
            durable=True,
        )
        result = await self.store.commit(new_key, request)
        if old_key:
            with self._span("session.rotate") as current:
                current.set_attribute("session.old_key_prefix", key_prefix(old_key))
                current.set_attribute("session.new_key_prefix", key_prefix(new_key))
                await self.store.delete([old_key])
                if user:
                    await self.store.index_remove(user, [old_key])
        session.moved(new_id, result.version)

    async def _update(self, session: Session) -> int:
        assert session.key is not None
        # Same-session commits from this process queue up instead of racing each other, so
        # only requests in other processes can make an attempt conflict.
        # (acquire/release, not an async context manager: this runs on every write)
        await self._commit_locks.acquire(session.key)
        try:
            return await self._update_locked(session, session.key)
        finally:
            self._commit_locks.release(session.key)

    async def _update_locked(self, session: Session, key: str) -> int:
        for attempt in range(1, MAX_COMMIT_ATTEMPTS + 1):
            request = CommitRequest(
                token=secrets.token_hex(8), create=False, durable=self.config.durable_writes
            )
            for name in session.changed:
                expected = session.versions.get(name, 0)
                if name in session.data:
                    request.sets[name] = (expected, _encode(session.data[name]))
                else:
                    request.deletes[name] = expected
            result = await self.store.commit(key, request)
            if result.ok:
                session.committed(result.version)
                return attempt - 1
            self._reapply(session, result.conflicts)
            await asyncio.sleep(random.uniform(0, _CONFLICT_PAUSE_S * attempt))  # noqa: S311
        self.observer.conflict("refused")
        raise SessionConflict(sorted(session.changed))

    def _reapply(self, session: Session, conflicts: dict[str, tuple[int, bytes] | None]) -> None:
        stuck = [name for name in conflicts if name not in session.updaters]
        if stuck:
            self.observer.conflict("refused")
            raise SessionConflict(stuck)
        self.observer.conflict("reapplied")
        for name, current in conflicts.items():
            fresh = orjson.loads(current[1]) if current else None
            session.rebased(name, current[0] if current else 0, fresh)

    async def list_user_sessions(self, user: str) -> list[SessionInfo]:
        return await self.store.index_list(user)

    async def revoke(self, user: str, keys: list[str]) -> None:
        """Sign out the given sessions of `user` (store keys from `list_user_sessions`)."""
        await self.store.delete(keys)
        await self.store.index_remove(user, keys)

    async def revoke_all(self, user: str) -> list[str]:
        keys = [info.key for info in await self.store.index_list(user)]
        await self.revoke(user, keys)
        return keys


def _mode_of(session: Session) -> str:
    if session.invalidated:
        return "invalidate"
    if session.rotate_requested:
        return "rotate" if session.exists else "create"
    return "update" if session.exists else "create"


def _encode(value: Any) -> bytes:
    return orjson.dumps(value)


def _decode(key: str | None, stored: StoredSession) -> tuple[dict[str, Any], dict[str, int]] | None:
    data: dict[str, Any] = {}
    versions: dict[str, int] = {}
    try:
        for name, (version, payload) in stored.fields.items():
            data[name] = orjson.loads(payload)
            versions[name] = version
    except orjson.JSONDecodeError:
        log_corrupt(key or "", "undecodable value")
        return None
    return data, versions
