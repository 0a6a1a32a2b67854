"""A per-request budget for store I/O, retries included.

The middleware opens the budget when a request starts; every store call made while handling
that request shares what is left of it. Outside a request (tests, scripts) each call gets a
fresh budget of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_deadline: ContextVar[float | None] = ContextVar("sessionfleet_store_deadline", default=None)


def open_budget(seconds: float) -> Token[float | None]:
    """Start a request's budget; hand the token to `close_budget` when the request ends.
    (Two calls rather than a context manager: this runs on every request.)"""
    return _deadline.set(time.monotonic() + seconds)


def close_budget(token: Token[float | None]) -> None:
    _deadline.reset(token)


def deadline_for(default_seconds: float) -> float:
    """Monotonic instant by which the current store call must be done."""
    current = _deadline.get()
    return current if current is not None else time.monotonic() + default_seconds


@contextmanager
def request_budget(seconds: float) -> Iterator[None]:
    """`open_budget` / `close_budget` as a context manager, for paths that are not hot."""
    token = open_budget(seconds)
    try:
        yield
    finally:
        close_budget(token)
