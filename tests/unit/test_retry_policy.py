"""What the store retries: refusals a failover or a restart causes, whoever raised them (the
pipelined connection keeps the reply's first word; redis-py strips it)."""

from __future__ import annotations

import pytest
from redis import exceptions as rx

from app.sessions.errors import NotDurable
from app.sessions.redis_retry import is_transient


@pytest.mark.parametrize(
    "error",
    [
        rx.ReadOnlyError("You can't write against a read only replica."),  # as redis-py raises
        rx.ReadOnlyError("READONLY You can't write against a read only replica."),
        rx.MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
        rx.BusyLoadingError("Redis is loading the dataset in memory"),
        rx.TryAgainError("Multiple keys request during rehashing of slot"),
        rx.ResponseError("NOREPLICAS Not enough good replicas to write."),
        rx.ConnectionError("protocol error from Redis at ('127.0.0.1', 6379)"),
        rx.TimeoutError("Redis did not answer in time"),
        NotDurable(),
    ],
    ids=lambda e: type(e).__name__ + ":" + str(e)[:12],
)
def test_failover_and_restart_refusals_are_retried(error: Exception) -> None:
    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        rx.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
        rx.NoPermissionError("this user has no permissions to run the 'set' command"),
        rx.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ValueError("not a Redis error"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_other_errors_are_not_retried(error: Exception) -> None:
    assert not is_transient(error)
