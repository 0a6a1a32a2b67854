from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager

from app.main import create_app
from app.settings import Settings
from harness.processes import RedisServer
from harness.redis_cluster import RedisCluster

LOAD_PASSWORD = "correct horse battery staple"
REDIS_FIXTURES = {"redis_server", "redis_db"}
CLUSTER_FIXTURES = {"redis_cluster", "cluster_db"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks what a test needs from what it asks for: a test given a real Redis (a fixture, or
    the "redis" case of `store_kind`) is `redis`, so `make test-fast -m ...` can pick."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_redis = callspec is not None and callspec.params.get("store_kind") == "redis"
        if fixtures & REDIS_FIXTURES or on_redis:
            item.add_marker(pytest.mark.redis)
        on_cluster = callspec is not None and callspec.params.get("store_kind") == "redis_cluster"
        if fixtures & CLUSTER_FIXTURES or on_cluster:
            item.add_marker(pytest.mark.redis_cluster)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(Path(tmp_path_factory.mktemp("redis")))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """3 shards x 1 replica, shared: tests that break it make their own."""
    cluster = RedisCluster(Path(tmp_path_factory.mktemp("redis-cluster")))
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_db(redis_cluster: RedisCluster) -> RedisCluster:
    redis_cluster.wait_healthy()
    redis_cluster.flush()
    return redis_cluster


@pytest.fixture
def redis_db(redis_server: RedisServer) -> redis.Redis:
    redis_server.client.flushall()
    return redis_server.client


def make_settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "replica_name": "test-replica",
        "loadtest_users": 20,
        "loadtest_password": LOAD_PASSWORD,
        "store_deadline": 1.0,
    }
    return Settings(**(base | overrides))


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_for(request: pytest.FixtureRequest) -> Callable[..., Settings]:
    """Settings for `store_kind` ("memory", "redis" or "redis_cluster"), with overrides."""

    def build(kind: str, **overrides: Any) -> Settings:
        if kind == "redis_cluster":
            cluster: RedisCluster = request.getfixturevalue("cluster_db")
            overrides.setdefault("redis_cluster_nodes", cluster.startup_nodes)
        if kind == "redis":
            server: RedisServer = request.getfixturevalue("redis_server")
            server.client.flushall()
            overrides.setdefault("redis_url", server.url)
        return make_settings(**overrides)

    return build


@pytest.fixture
async def client_for() -> AsyncIterator[Callable[..., Any]]:
    """`await client_for(settings)` -> an httpx client talking to a fresh app over ASGI."""
    stack: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def build(
        settings: Settings,
        base_url: str = "https://sf.test",
        peer: tuple[str, int] = ("127.0.0.1", 123),
    ) -> httpx.AsyncClient:
        manager = LifespanManager(create_app(settings))
        await manager.__aenter__()
        transport = httpx.ASGITransport(manager.app, client=peer)
        client = httpx.AsyncClient(transport=transport, base_url=base_url)
        stack.append((manager, client))
        return client

    yield build
    for manager, client in reversed(stack):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
async def client(
    store_kind: str, settings_for: Callable[..., Settings], client_for: Callable[..., Any]
) -> httpx.AsyncClient:
    """A client of an app on each store (tests using it run twice: memory and Redis)."""
    return await client_for(settings_for(store_kind))  # type: ignore[no-any-return]


def sibling(client: httpx.AsyncClient, peer: tuple[str, int] | None = None) -> httpx.AsyncClient:
    """Another client of the same app: its own cookie jar, the same or another address."""
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(transport.app, client=peer or transport.client),
        base_url=client.base_url,
    )


async def login(client: httpx.AsyncClient, user: str = "user-0001") -> httpx.Response:
    response = await client.post("/login", json={"username": user, "password": LOAD_PASSWORD})
    assert response.status_code == 200, response.text
    return response


async def request_with_cookie(
    client: httpx.AsyncClient, method: str, path: str, cookie: str, name: str = "__Host-sid"
) -> httpx.Response:
    """Send one request carrying exactly `cookie`, leaving the client's own jar untouched."""
    saved = httpx.Cookies(client.cookies)
    client.cookies.clear()
    client.cookies.set(name, cookie, domain=client.base_url.host)
    try:
        return await client.request(method, path)
    finally:
        client.cookies = saved
