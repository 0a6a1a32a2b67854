"""The session a handler sees: a mapping of JSON values with change tracking.

Loaded lazily: nothing touches the store until `await session.load()`. Assigning or deleting
a key marks it changed; only changed keys are committed, each against the version it was
loaded at, so concurrent requests that change different keys never overwrite each other.
Mutating a value in place is not tracked: assign it back. For a key several requests may
change at once, use `apply(key, fn)`: on a concurrent change, `fn` is re-applied to the
fresh value instead of the request failing with 409.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Protocol

from .cookies import store_key_of
from .errors import SessionNotLoaded


class SessionBackend(Protocol):
    """What a session asks of whoever loads and commits it (`SessionManager`). It reports back
    through the session's own methods below: only the session writes its state."""

    async def load(self, session: Session) -> None: ...

    async def save(self, session: Session) -> None: ...


USER_KEY = "@user"  # reserved: the user a session is logged in as (drives the user index)
_KEY_SHAPE = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")


class Session(MutableMapping[str, Any]):
    def __init__(self, manager: SessionBackend, session_id: str | None) -> None:
        self._manager = manager
        self.id = session_id  # the raw ID: never log it, never store it
        self.key = store_key_of(session_id) if session_id else None
        self.presented = session_id is not None  # the client sent a well-formed cookie
        self.loaded = False
        self.exists = False  # stored server-side
        self.data: dict[str, Any] = {}
        self.versions: dict[str, int] = {}
        self.changed: set[str] = set()
        self.updaters: dict[str, Callable[[Any], Any]] = {}
        self.rotate_requested = False
        self.invalidated: tuple[str, str | None] | None = None  # (key, user) to delete
        self.cookie: str | None = None  # "set" | "clear": what the client must be told
        self.created_ms = 0
        self.expires_at_ms = 0

    # --- I/O (delegated to the manager) -------------------------------------------------------

    async def load(self) -> Session:
        """Fetch from the store once (one round trip, slides the idle expiry)."""
        if not self.loaded:
            await self._manager.load(self)
        return self

    async def reload(self) -> Session:
        """Drop unsaved changes and fetch the stored state again."""
        self.discard_changes()
        self.loaded = False
        return await self.load()

    def discard_changes(self) -> None:
        """Forget what this request changed; nothing more will be committed."""
        self.changed.clear()
        self.updaters.clear()
        self.rotate_requested = False
        self.invalidated = None

    async def save(self) -> None:
        """Commit now instead of when the response starts (one round trip + replica wait).

        Call it before building a response from values set with `apply`, which a concurrent
        change may re-apply. Raises `SessionConflict`, `SessionTooLarge`, `SessionEnded`,
        `StoreUnavailable`.
        """
        await self._manager.save(self)

    @property
    def dirty(self) -> bool:
        return bool(self.changed or self.rotate_requested or self.invalidated)

    # --- mapping -----------------------------------------------------------------------------

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise SessionNotLoaded("await session.load() before using session data")

    def __getitem__(self, key: str) -> Any:
        self._require_loaded()
        return self.data[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._require_loaded()
        if not _KEY_SHAPE.fullmatch(key):
            raise ValueError(f"invalid session key {key!r}")
        self.data[key] = value
        self.changed.add(key)

    def __delitem__(self, key: str) -> None:
        self._require_loaded()
        del self.data[key]
        self.changed.add(key)

    def __iter__(self) -> Iterator[str]:
        self._require_loaded()
        return iter(self.data)

    def __len__(self) -> int:
        self._require_loaded()
        return len(self.data)

    def apply(self, key: str, fn: Callable[[Any], Any]) -> Any:
        """Set `key` to `fn(current value or None)`; re-applied on a concurrent change."""
        self[key] = fn(self.data.get(key))
        self.updaters[key] = fn
        return self.data[key]

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def user_id(self) -> str | None:
        self._require_loaded()
        user = self.data.get(USER_KEY)
        return user if isinstance(user, str) else None

    def log_in(self, user_id: str) -> None:
        """Bind the session to a user under a new ID (no fixation). The data of an anonymous
        session, or of this user's, is kept; a session of another user is ended server-side
        and the login starts empty (a shared browser must not hand one user's data to the
        next)."""
        current = self.user_id
        if current is not None and current != user_id:
            self.invalidate()
        self[USER_KEY] = user_id
        self.rotate()

    def rotate(self) -> None:
        """Move the data to a new ID at commit; the old ID stops working."""
        self._require_loaded()
        self.rotate_requested = True

    # --- what the backend reports ------------------------------------------------------------

    def found(
        self, data: dict[str, Any], versions: dict[str, int], created_ms: int, expires_at_ms: int
    ) -> None:
        """Loaded from the store."""
        self.loaded = self.exists = True
        self.data, self.versions = data, versions
        self.created_ms, self.expires_at_ms = created_ms, expires_at_ms

    def not_found(self) -> None:
        """Loaded: nothing stored (new, expired or unknown)."""
        self.loaded = True
        if self.presented:
            self.cookie = "clear"  # unknown or expired: stop the client sending it

    def ended(self) -> None:
        """Its invalidation is done: deleted server-side, the client to drop its cookie."""
        self.invalidated = None
        self.cookie = "clear"

    def moved(self, session_id: str, version: int) -> None:
        """Its data now lives under a new ID (created or rotated), all at `version`."""
        self.id, self.key, self.exists = session_id, store_key_of(session_id), True
        self.versions = dict.fromkeys(self.data, version)
        self.changed.clear()
        self.rotate_requested = False
        self.cookie = "set"

    def committed(self, version: int) -> None:
        """Its changed keys are stored, at `version`."""
        for name in self.changed:
            if name in self.data:
                self.versions[name] = version
            else:
                self.versions.pop(name, None)
        self.changed.clear()
        self.rotate_requested = False

    def rebased(self, name: str, version: int, value: Any) -> None:
        """A concurrent commit changed `name` first: re-apply this request's update to what it
        stored (`value` at `version`) before committing again."""
        self.versions[name] = version
        self.data[name] = self.updaters[name](value)

    def invalidate(self) -> None:
        """Delete the session server-side and expire the cookie; the request goes on as a
        new anonymous session."""
        self._require_loaded()
        if self.exists and self.key:
            self.invalidated = (self.key, self.user_id)
        self.data.clear()
        self.versions.clear()
        self.changed.clear()
        self.updaters.clear()
        self.exists = False
        self.rotate_requested = False
