"""Every Redis command of the app (sessions, their per-user index, the login throttle, the
order book, readiness, the session count) goes over one pipelined connection: one stack, one
decision about where the master is."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from harness.processes import RedisServer
from tests.conftest import login

pytestmark = pytest.mark.redis


def _clients_since(admin: redis.Redis, first_id: int) -> list[dict[str, Any]]:
    """Connections opened after `first_id`, the admin's own (asking) one excepted."""
    return [c for c in admin.client_list() if int(c["id"]) > first_id and c["cmd"] != "client|list"]


async def test_every_command_of_the_app_goes_over_one_connection(
    redis_server: RedisServer, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    settings = settings_for("redis", max_sessions_per_user=1)
    admin = redis_server.client
    first_id = int(admin.client_id())
    client = await client_for(settings)
    failed = await client.post("/login", json={"username": "user-0001", "password": "wrong"})
    assert failed.status_code == 401  # the throttle counts it (a script)
    await login(client)  # throttle reads and clears, session commit, index with its cap
    await login(client, "user-0001")  # rotation: the index evicts the old session
    await client.post("/cart/items", json={"item_id": "book", "qty": 1})
    checkout = await client.post("/checkout", headers={"Idempotency-Key": "order-key-0001"})
    assert checkout.status_code == 201  # the order book's SET
    assert (await client.get("/sessions")).status_code == 200  # index listed
    assert (await client.get("/readyz")).status_code == 200  # ROLE
    assert "sessionfleet_sessions_active" in (await client.get("/metrics")).text  # SCAN
    assert (await client.post("/logout-all")).status_code == 200  # DEL, ZREM
    opened = _clients_since(admin, first_id)
    assert len(opened) == 1, opened
