"""Two app processes serve one session at the same time: no update is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.processes import AppServer, RedisServer
from tests.conftest import LOAD_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@pytest.fixture(scope="module")
def two_apps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AppServer, AppServer]]:
    workdir = Path(tmp_path_factory.mktemp("multiprocess"))
    redis = RedisServer(workdir)
    env = {
        "SESSIONFLEET_REDIS_URL": redis.url,
        "SESSIONFLEET_LOADTEST_USERS": "10",
        "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
    }
    apps = (AppServer(workdir, env, name="a"), AppServer(workdir, env, name="b"))
    yield apps
    for app in apps:
        app.stop()
    redis.stop()


async def logged_in_pair(apps: tuple[AppServer, AppServer]) -> list[httpx.AsyncClient]:
    """Two clients, one per process, carrying the same session cookie."""
    a = httpx.AsyncClient(base_url=apps[0].url, timeout=10)
    response = await a.post("/login", json={"username": "user-0001", "password": LOAD_PASSWORD})
    assert response.status_code == 200
    b = httpx.AsyncClient(base_url=apps[1].url, timeout=10, cookies=a.cookies)
    return [a, b]


async def test_same_key_from_two_processes_loses_no_increment(
    two_apps: tuple[AppServer, AppServer],
) -> None:
    clients = await logged_in_pair(two_apps)
    per_client, rounds = 8, 15  # 8 in flight per process at once, 240 increments in all

    async def hammer(client: httpx.AsyncClient) -> list[int]:
        values = []
        for _ in range(rounds):
            replies = await asyncio.gather(*(client.post("/counter") for _ in range(per_client)))
            assert [r.status_code for r in replies] == [200] * per_client
            values += [r.json()["counter"] for r in replies]
        return values

    results = await asyncio.gather(*(hammer(c) for c in clients))
    served = {r.headers["x-served-by"] for r in [await c.get("/me") for c in clients]}
    total = 2 * per_client * rounds
    assert served == {"a", "b"}
    assert sorted(results[0] + results[1]) == list(range(1, total + 1))
    assert (await clients[0].post("/counter")).json()["counter"] == total + 1


async def test_different_keys_from_two_processes_both_persist(
    two_apps: tuple[AppServer, AppServer],
) -> None:
    clients = await logged_in_pair(two_apps)

    async def fill(client: httpx.AsyncClient, prefix: str) -> None:
        for i in range(40):
            reply = await client.post("/cart/items", json={"item_id": f"{prefix}{i}", "qty": 1})
            assert reply.status_code == 200

    await asyncio.gather(
        fill(clients[0], "a"),
        fill(clients[1], "b"),
        *(clients[i % 2].post("/counter") for i in range(40)),
    )
    cart = (await clients[1].get("/cart")).json()["items"]
    assert len(cart) == 80
    assert (await clients[0].post("/counter")).json()["counter"] == 41
