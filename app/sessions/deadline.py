"""A per-request budget for store I/O, retries included.

The middleware opens the budget when a request starts; every store call made while handling
that request shares what is left of it. Outside a request (tests, scripts) each call gets a
fresh budget of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("sessionfleet_store_deadline", default=None)


@contextmanager
def request_budget(seconds: float) -> Iterator[None]:
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def deadline_for(default_seconds: float) -> float:
    """Monotonic instant by which the current store call must be done."""
    current = _deadline.get()
    return current if current is not None else time.monotonic() + default_seconds
