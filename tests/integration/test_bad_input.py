"""Hostile or broken input gets a clear 4xx, never a 500, and nothing half-written."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.sessions import store_key_of
from tests.conftest import login, request_with_cookie

BAD_COOKIES = [
    "",
    "short",
    "A" * 42,
    "A" * 44,
    "A" * 4000,
    "!!!!" * 11,
    "A" * 42 + "=",
    '"' + "A" * 43,
    "AAAA%00AAA" * 5,
]


@pytest.mark.parametrize("cookie", BAD_COOKIES)
async def test_malformed_cookie_is_anonymous(client: httpx.AsyncClient, cookie: str) -> None:
    response = await request_with_cookie(client, "GET", "/me", cookie)
    assert response.status_code == 401


async def test_unknown_cookie_is_anonymous_and_cleared(client: httpx.AsyncClient) -> None:
    response = await request_with_cookie(client, "GET", "/me", "B" * 43)
    assert response.status_code == 401
    assert "Max-Age=0" in response.headers["set-cookie"]


async def test_huge_cookie_header_is_ignored(client: httpx.AsyncClient) -> None:
    await login(client)
    real = client.cookies["__Host-sid"]
    header = f"__Host-sid={real}; " + "; ".join(f"x{i}={'y' * 100}" for i in range(100))
    response = await client.get("/me", headers={"cookie": header})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b'{"username": "user-0001"}',
        b'{"username": 5, "password": "x"}',
        b'{"username": "has space", "password": "x"}',
        b'{"username": "user-0001", "password": ""}',
        b"[]",
    ],
)
async def test_bad_login_bodies_are_422(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(
        "/login", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "line",
    [
        {"item_id": "a", "qty": 0},
        {"item_id": "a", "qty": "many"},
        {"item_id": "../x", "qty": 1},
        {},
    ],
)
async def test_bad_cart_lines_are_422(client: httpx.AsyncClient, line: dict[str, Any]) -> None:
    await login(client)
    assert (await client.post("/cart/items", json=line)).status_code == 422


async def test_oversized_request_body_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/login", content=b"x" * 70_000, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_oversized_chunked_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1000

    response = await client.post(
        "/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


async def test_session_over_budget_is_413_and_nothing_half_written(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for(store_kind, session_max_bytes=600))
    await login(client)
    await client.post("/cart/items", json={"item_id": "first", "qty": 1})
    statuses = []
    for i in range(30):
        statuses.append(
            (
                await client.post("/cart/items", json={"item_id": f"item-{i:030d}", "qty": 1})
            ).status_code
        )
    assert 413 in statuses and set(statuses) <= {200, 413}
    cart = (await client.get("/cart")).json()["items"]
    assert "first" in cart and len(cart) == statuses.index(413) + 1
    assert (await client.get("/me")).status_code == 200  # still logged in
    assert (await client.delete("/cart/items/first")).status_code == 200  # shrinking works


async def test_cross_site_post_is_403(client: httpx.AsyncClient) -> None:
    await login(client)
    for headers in (
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ):
        response = await client.post("/counter", headers=headers)
        assert response.status_code == 403, headers
    assert (await client.get("/cart")).json()["items"] == {}


async def test_same_origin_post_passes(client: httpx.AsyncClient) -> None:
    await login(client)
    ok = await client.post(
        "/counter", headers={"origin": "https://sf.test", "sec-fetch-site": "same-origin"}
    )
    assert ok.status_code == 200


async def test_trusted_origin_passes(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for(store_kind, trusted_origins="https://shop.example"))
    await login(client)
    assert (
        await client.post("/counter", headers={"origin": "https://shop.example"})
    ).status_code == 200


@pytest.mark.parametrize(
    "corruption",
    [
        {"counter": b"not-a-version"},
        {"counter": b"3:{not json"},
        {"#a": b"soon"},
    ],
)
async def test_corrupt_store_data_is_treated_as_missing(
    settings_for: Callable[..., Any],
    client_for: Callable[..., Any],
    redis_server: Any,
    corruption: dict[str, bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await client_for(settings_for("redis"))
    await login(client)
    sid = client.cookies["__Host-sid"]
    redis_server.client.hset(f"sf:{{{store_key_of(sid)}}}:s", mapping=corruption)
    response = await client.get("/me")
    assert response.status_code == 401
    assert "corrupt session" in caplog.text
    assert sid not in caplog.text


async def test_store_down_answers_503_fast(
    settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    from harness.processes import free_port

    settings = settings_for(
        "memory", redis_url=f"redis://127.0.0.1:{free_port()}/0", store_deadline=1.0
    )
    client = await client_for(settings)
    started = time.monotonic()
    response = await client.post("/login", json={"username": "user-0001", "password": "x"})
    elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert elapsed < 2.0
    assert (await client.get("/healthz")).status_code == 200  # needs no store
    assert (await client.get("/readyz")).status_code == 503


@pytest.mark.redis
async def test_stalled_store_answers_503_within_deadline(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], tmp_path: Any
) -> None:
    """A server that accepts connections but never answers (SIGSTOP) must not hang requests."""
    import signal

    from harness.processes import RedisServer

    server = RedisServer(tmp_path)
    try:
        client = await client_for(settings_for("memory", redis_url=server.url, store_deadline=1.0))
        await login(client)
        server.proc.signal(signal.SIGSTOP)
        started = time.monotonic()
        response = await client.get("/me")
        elapsed = time.monotonic() - started
        assert response.status_code == 503 and "retry-after" in response.headers
        assert elapsed < 1.8
        server.proc.signal(signal.SIGCONT)
        recovered = await client.get("/me")
        assert recovered.status_code == 200
    finally:
        server.stop()
