"""Bounded retries of Redis calls across failovers, inside the request's deadline."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from opentelemetry import trace
from redis import exceptions as rx

from .deadline import deadline_for
from .errors import NotDurable, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

# Replies a master gives while it cannot take writes yet (or any more), a replica gives
# when reached under the master's name, or a cluster gives while a shard fails over: worth
# retrying. By class (redis-py strips the word
# from the message) and by first word (the pipelined connection keeps it; NOREPLICAS has no
# class of its own).
_TRANSIENT_CLASSES = (rx.ReadOnlyError, rx.MasterDownError, rx.TryAgainError, rx.ClusterDownError)
_TRANSIENT_REPLIES = (
    "NOREPLICAS",
    "MASTERDOWN",
    "LOADING",
    "TRYAGAIN",
    "READONLY",
    "CLUSTERDOWN",
)
# Capped low: after a failover the first retry that finds the new master should not sleep
# long; retries are bounded by the request deadline and the number of requests in flight.
_BACKOFF_FIRST, _BACKOFF_MAX = 0.02, 0.1
# How long refused connections are retried: long enough for Sentinel to hand out a new master
# that was already promoted, short enough to answer 503 at once when Redis is down.
REFUSED_GRACE = 0.3


def is_transient(exc: BaseException) -> bool:
    # A lost or refused connection, a protocol error, BusyLoadingError (LOADING) and "no
    # majority of Sentinels" are ConnectionErrors; READONLY, MASTERDOWN, TRYAGAIN are
    # ResponseErrors.
    if isinstance(exc, rx.ConnectionError | rx.TimeoutError | TimeoutError | NotDurable):
        return True
    if isinstance(exc, _TRANSIENT_CLASSES):
        return True
    return isinstance(exc, rx.ResponseError) and str(exc).startswith(_TRANSIENT_REPLIES)


def is_refused(exc: BaseException) -> bool:
    """Nothing listens at the address (killed, restarting): a clear no, not silence."""
    seen: BaseException | None = exc
    for _ in range(5):  # redis-py and the batcher wrap the OSError once or twice
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError | FileNotFoundError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


async def with_retry(
    op: Callable[[], Awaitable[T]],
    default_budget: float,
    name: str,
    on_retry: Callable[[str, str], None] | None = None,
    *,
    op_keeps_deadline: bool = False,
) -> T:
    """Run `op` until it succeeds, fails for good, or the deadline passes.

    Raises `StoreUnavailable` (or `NotDurable`) once the deadline is reached; never blocks
    longer than the deadline, even on a server that stopped answering. A refused connection
    is retried for `REFUSED_GRACE` only: the deadline is for silence, not for a clear no.
    `op_keeps_deadline`: `op` fails with a timeout at the deadline by itself (batched calls
    do), so no `asyncio.timeout` is armed around it: that costs more than the call on the
    hot path.
    """
    deadline = deadline_for(default_budget)
    delay = _BACKOFF_FIRST
    attempt = 0
    last: Exception | None = None
    while True:
        attempt += 1
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _give_up(name, attempt - 1, last)
        try:
            if op_keeps_deadline:
                return await op()
            async with asyncio.timeout(remaining):
                return await op()
        except Exception as exc:
            if not is_transient(exc):
                raise
            if last is None or not isinstance(last, NotDurable) or isinstance(exc, NotDurable):
                last = exc  # a timeout after "too few replicas" is still "too few replicas"
            if is_refused(exc):
                deadline = min(deadline, time.monotonic() + REFUSED_GRACE)
            remaining = deadline - time.monotonic()
            error = type(exc).__name__
            trace.get_current_span().add_event(
                "store.retry",
                {"store.operation": name, "store.attempt": attempt, "error.type": error},
            )
            if on_retry is not None:
                on_retry(name, error)
            log.debug("redis %s attempt %d failed: %s: %s", name, attempt, error, exc)
            if remaining <= delay:
                raise _give_up(name, attempt, last) from exc
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            delay = min(delay * 2, _BACKOFF_MAX)


def _give_up(name: str, attempts: int, last: Exception | None) -> StoreUnavailable:
    # One line per request that failed, not one per attempt: an outage must not flood the log.
    if last is None:
        log.warning("redis %s not tried: the request's deadline had passed", name)
    else:
        log.warning(
            "redis %s gave up after %d attempts: %s: %s", name, attempts, type(last).__name__, last
        )
    return last if isinstance(last, NotDurable) else StoreUnavailable()
