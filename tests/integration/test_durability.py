"""A commit is acknowledged only once enough replicas hold it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


@pytest.mark.parametrize("wait_all_writes", [True, False])
async def test_login_without_replica_ack_is_503_not_ok(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], wait_all_writes: bool
) -> None:
    # A standalone Redis has no replica: WAIT 1 can never be satisfied.
    settings = settings_for(
        "redis",
        redis_wait_replicas=1,
        redis_wait_timeout_ms=100,
        redis_wait_all_writes=wait_all_writes,
        store_deadline=1.0,
    )
    client = await client_for(settings)
    started = time.monotonic()
    response = await client.post(
        "/login", json={"username": "user-0001", "password": "correct horse battery staple"}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "set-cookie" not in response.headers  # the client learns no session ID
    assert time.monotonic() - started < 1.6
    assert "replicas" in response.json()["detail"]
