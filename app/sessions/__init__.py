"""Server-side sessions for ASGI apps: lazy loading, per-key optimistic commits, rotation,
per-user index, Redis (standalone or Sentinel) or in-memory stores. No FastAPI needed."""

from .census import ReplicaCensus
from .connect import RedisConnection, RedisOptions, connect
from .cookies import CookiePolicy
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
from .redis_retry import with_retry
from .redis_store import RedisSessionStore
from .responses import error_response
from .session import Session
from .store import Limits, SessionInfo, SessionStore

__all__ = [
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
    "connect",
    "error_response",
    "request_budget",
    "with_retry",
]
