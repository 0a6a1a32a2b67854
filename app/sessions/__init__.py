"""Server-side sessions for ASGI apps: lazy loading, per-key optimistic commits, rotation,
per-user index, Redis (standalone, Sentinel or Cluster) or in-memory stores. No FastAPI needed."""

from .census import ReplicaCensus
from .connect import RedisConnection, RedisOptions, connect
from .cookies import CookiePolicy, new_session_id, store_key_of
from .deadline import request_budget
from .errors import (
    NotDurable,
    SessionConflict,
    SessionEnded,
    SessionError,
    SessionTooLarge,
    StoreUnavailable,
)
from .manager import SessionConfig, SessionManager
from .memory_store import MemorySessionStore
from .middleware import SessionMiddleware
from .observer import SessionObserver
from .pipe import Ack
from .redis_retry import with_retry
from .redis_store import RedisSessionStore
from .responses import error_response
from .session import Session
from .store import CommitRequest, CommitResult, Limits, SessionInfo, SessionStore, StoredSession

__all__ = [
    "Ack",
    "CommitRequest",
    "CommitResult",
    "CookiePolicy",
    "Limits",
    "MemorySessionStore",
    "NotDurable",
    "RedisConnection",
    "RedisOptions",
    "RedisSessionStore",
    "ReplicaCensus",
    "Session",
    "SessionConfig",
    "SessionConflict",
    "SessionEnded",
    "SessionError",
    "SessionInfo",
    "SessionManager",
    "SessionMiddleware",
    "SessionObserver",
    "SessionStore",
    "SessionTooLarge",
    "StoreUnavailable",
    "StoredSession",
    "connect",
    "error_response",
    "new_session_id",
    "request_budget",
    "store_key_of",
    "with_retry",
]
