"""What an attacker with a Redis dump or the logs would find: no usable session ID."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import login


async def test_no_raw_session_id_in_any_redis_key_or_value(
    settings_for: Callable[..., Any],
    client_for: Callable[..., Any],
    redis_server: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    client = await client_for(settings_for("redis"))
    seen: set[str] = set()
    for user in ("user-0001", "user-0002"):
        await login(client, user)
        seen.add(client.cookies["__Host-sid"])
        await client.post("/cart/items", json={"item_id": "x", "qty": 1})
        await client.post("/counter")
        await client.post("/checkout", headers={"Idempotency-Key": f"key-{user}"})
        await login(client, user)  # rotation
        seen.add(client.cookies["__Host-sid"])
    dump = bytearray()
    r = redis_server.client
    for key in r.scan_iter():
        dump += key
        kind = r.type(key)
        if kind == b"hash":
            for field, value in r.hgetall(key).items():
                dump += field + value
        elif kind == b"zset":
            for member, _ in r.zrange(key, 0, -1, withscores=True):
                dump += member
        else:
            dump += r.dump(key) or b""
    assert len(seen) == 4 and dump
    for sid in seen:
        assert sid.encode() not in dump
        assert sid not in caplog.text


async def test_session_ids_are_unique_and_long(client: httpx.AsyncClient) -> None:
    ids = set()
    for _ in range(20):
        await login(client)
        ids.add(client.cookies["__Host-sid"])
    assert len(ids) == 20 and all(len(i) == 43 for i in ids)


async def test_errors_never_leak_a_stack_trace(client: httpx.AsyncClient) -> None:
    await login(client)
    for method, path in (("DELETE", "/sessions/zz"), ("GET", "/nope"), ("PUT", "/counter")):
        response = await client.request(method, path)
        assert response.status_code in (404, 405, 422)
        assert "Traceback" not in response.text
