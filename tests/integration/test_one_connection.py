"""Every Redis command of the app (sessions, their per-user index, the login throttle, the
order book, readiness, the session count) goes over one pipelined connection: one stack, one
decision about where the master is."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

from app.sessions import RedisOptions, connect
from harness.processes import Proc, RedisServer, free_port, wait_until
from tests.conftest import login

pytestmark = pytest.mark.redis


def newest_client_id(admin: redis.Redis) -> int:
    return max(int(c["id"]) for c in admin.client_list())


def _clients_since(admin: redis.Redis, first_id: int) -> list[dict[str, Any]]:
    """Connections opened after `first_id`, the admin's own (asking) one excepted."""
    return [c for c in admin.client_list() if int(c["id"]) > first_id and c["cmd"] != "client|list"]


async def test_every_command_of_the_app_goes_over_one_connection(
    redis_server: RedisServer, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    settings = settings_for("redis", max_sessions_per_user=1)
    admin = redis_server.client
    first_id = newest_client_id(admin)
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


def _sentinel(workdir: Path, watching: RedisServer) -> tuple[Proc, int]:
    """A Sentinel of its own that monitors `watching` under the app's master name."""
    port = free_port()
    workdir.mkdir(parents=True)
    config = workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
        f"sentinel monitor sessionfleet 127.0.0.1 {watching.port} 1\n"
    )
    proc = Proc([shutil.which("redis-sentinel") or "redis-sentinel", str(config)], workdir / "log")
    probe = redis.Redis(port=port, socket_timeout=1)
    wait_until(lambda: bool(probe.sentinel_master("sessionfleet")), 10, f"sentinel {port}")
    probe.close()
    return proc, port


@pytest.mark.sentinel
async def test_the_connection_goes_to_the_master_the_sentinel_majority_names(
    tmp_path: Path,
) -> None:
    # The Sentinel redis-py would ask first is the odd one out (a stale or misconfigured one):
    # the commands go to the master the majority names, the one durable commits check.
    master, stray = RedisServer(tmp_path / "master"), RedisServer(tmp_path / "stray")
    sentinels = [
        _sentinel(tmp_path / "s0", stray),
        _sentinel(tmp_path / "s1", master),
        _sentinel(tmp_path / "s2", master),
    ]
    connection = connect(
        RedisOptions(
            sentinels=[("127.0.0.1", port) for _, port in sentinels], master_name="sessionfleet"
        )
    )
    try:
        await connection.call("SET", "where", "here")
        assert master.client.get("where") == b"here"
        assert stray.client.get("where") is None
    finally:
        await connection.close()
        for proc, _ in sentinels:
            proc.stop()
        master.stop()
        stray.stop()
