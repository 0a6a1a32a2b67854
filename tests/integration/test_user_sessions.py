"""A user's sessions: list, revoke one, log out everywhere; on a Redis Cluster too, where a
user's sessions live in other slots than their index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import login


@pytest.fixture(params=["memory", "redis", "redis_cluster"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def devices(client_for: Callable[..., Any], settings: Any, n: int) -> list[httpx.AsyncClient]:
    """n clients (devices) sharing one app, each logged in as user-0001."""
    first = await client_for(settings)
    clients = [first] + [
        httpx.AsyncClient(transport=first._transport, base_url=first.base_url) for _ in range(n - 1)
    ]
    for c in clients:
        await login(c)
    return clients


async def test_list_shows_each_device_once(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    a, b, _c = await devices(client_for, settings_for(store_kind), 3)
    listed = (await a.get("/sessions")).json()["sessions"]
    assert len(listed) == 3
    assert sum(s["current"] for s in listed) == 1
    await b.post("/logout")
    assert len((await a.get("/sessions")).json()["sessions"]) == 2


async def test_revoke_one_session(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    a, b = await devices(client_for, settings_for(store_kind), 2)
    other = next(s for s in (await a.get("/sessions")).json()["sessions"] if not s["current"])
    assert (await a.delete(f"/sessions/{other['id']}")).status_code == 204
    assert (await b.get("/me")).status_code == 401
    assert (await a.get("/me")).status_code == 200
    assert (await a.delete(f"/sessions/{other['id']}")).status_code == 404


async def test_cannot_revoke_someone_elses_session(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    [alice] = await devices(client_for, settings_for(store_kind), 1)
    bob = httpx.AsyncClient(transport=alice._transport, base_url=alice.base_url)
    await login(bob, "user-0002")
    alice_id = (await alice.get("/sessions")).json()["sessions"][0]["id"]
    assert (await bob.delete(f"/sessions/{alice_id}")).status_code == 404
    assert (await alice.get("/me")).status_code == 200


async def test_logout_all_ends_every_session(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    clients = await devices(client_for, settings_for(store_kind), 3)
    response = await clients[0].post("/logout-all")
    assert response.json() == {"revoked": 3}
    assert "Max-Age=0" in response.headers["set-cookie"]
    for c in clients:
        assert (await c.get("/me")).status_code == 401


async def test_index_never_grows_past_the_cap(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    clients = await devices(client_for, settings_for(store_kind, max_sessions_per_user=2), 4)
    assert len((await clients[-1].get("/sessions")).json()["sessions"]) == 2
    assert (await clients[0].get("/me")).status_code == 401  # oldest signed out
