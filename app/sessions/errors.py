"""Errors of the session layer. Each carries the HTTP answer it becomes (see `responses.py`)."""

from __future__ import annotations


class SessionError(Exception):
    """Base class; `status_code` and `detail` are what the client is told."""

    status_code = 500
    detail = "session error"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.detail)
        if detail:
            self.detail = detail


class StoreUnavailable(SessionError):
    """The store did not answer within the request's deadline (down, failing over, overloaded)."""

    status_code = 503
    detail = "session store unavailable, retry shortly"


class NotDurable(StoreUnavailable):
    """The write reached the master but too few replicas acknowledged it in time."""

    detail = "session change not acknowledged by enough replicas, retry shortly"


class SessionConflict(SessionError):
    """A key this request changed was changed by a concurrent request first."""

    status_code = 409
    detail = "session changed concurrently, reload and retry"

    def __init__(self, keys: list[str]) -> None:
        super().__init__(f"session keys changed concurrently: {', '.join(sorted(keys))}")
        self.keys = keys


class SessionTooLarge(SessionError):
    """The session would exceed its byte budget; nothing was written."""

    status_code = 413
    detail = "session data too large"


class SessionEnded(SessionError):
    """The session was revoked or expired while this request ran; nothing was written."""

    status_code = 401
    detail = "session ended"


class SessionNotLoaded(RuntimeError):
    """Programming error: session data used before `await session.load()`."""
