"""Login, logout, rotation and cookie hygiene, on both stores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import LOAD_PASSWORD, login, request_with_cookie


def cookie_header(response: httpx.Response) -> str:
    """The session cookie's Set-Cookie (a login also sets the device cookie)."""
    [header] = [h for h in response.headers.get_list("set-cookie") if "sfdev" not in h]
    return header


async def test_login_sets_hardened_cookie(client: httpx.AsyncClient) -> None:
    response = await login(client)
    header = cookie_header(response)
    name, _, rest = header.partition("=")
    assert name == "__Host-sid"
    value = rest.split(";")[0]
    assert len(value) == 43
    flags = {flag.strip().split("=")[0].lower() for flag in rest.split(";")[1:]}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= flags
    assert "SameSite=Lax" in header and "Path=/" in header and "Domain" not in header


async def test_me_requires_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/me")).status_code == 401
    await login(client, "user-0007")
    me = await client.get("/me")
    assert me.status_code == 200 and me.json()["user"] == "user-0007"


async def test_login_rotates_session_id(client: httpx.AsyncClient) -> None:
    await login(client)
    first = client.cookies["__Host-sid"]
    await login(client, "user-0002")
    second = client.cookies["__Host-sid"]
    assert first != second
    replay = await request_with_cookie(client, "GET", "/me", first)
    assert replay.status_code == 401


async def test_attacker_chosen_id_is_never_adopted(client: httpx.AsyncClient) -> None:
    planted = "A" * 43  # well formed, but no such session: fixation attempt
    client.cookies.set("__Host-sid", planted, domain="sf.test")
    await login(client)
    assert client.cookies["__Host-sid"] != planted


async def test_logout_deletes_server_side_and_expires_cookie(client: httpx.AsyncClient) -> None:
    await login(client)
    old = client.cookies["__Host-sid"]
    response = await client.post("/logout")
    assert response.status_code == 204
    assert "Max-Age=0" in cookie_header(response)
    replay = await request_with_cookie(client, "GET", "/me", old)
    assert replay.status_code == 401


async def test_wrong_password_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/login", json={"username": "user-0001", "password": "nope"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


async def test_unknown_user_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/login", json={"username": "user-9999", "password": LOAD_PASSWORD}
    )
    assert response.status_code == 401


async def test_repeated_failures_are_throttled_per_user(client: httpx.AsyncClient) -> None:
    bad = {"username": "user-0003", "password": "wrong"}
    statuses = [(await client.post("/login", json=bad)).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    blocked = await client.post("/login", json={"username": "user-0003", "password": LOAD_PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    other_user = await client.post(
        "/login", json={"username": "user-0004", "password": LOAD_PASSWORD}
    )
    assert other_user.status_code == 200


async def test_failures_are_throttled_per_client(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for(store_kind, login_max_failures_per_client=3))
    for i in range(3):
        bad = {"username": f"user-00{10 + i}", "password": "wrong"}
        assert (await client.post("/login", json=bad)).status_code == 401
    fresh = {"username": "user-0015", "password": LOAD_PASSWORD}
    assert (await client.post("/login", json=fresh)).status_code == 429


async def test_no_set_cookie_when_nothing_changed(client: httpx.AsyncClient) -> None:
    await login(client)
    for path in ("/me", "/cart", "/sessions", "/healthz"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers, path


async def test_plain_http_cookie_has_no_host_prefix(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for(store_kind, cookie_secure=False), "http://sf.test")
    header = cookie_header(await login(client))
    assert header.startswith("sid=") and "Secure" not in header and "HttpOnly" in header
    assert (await client.get("/me")).status_code == 200


async def test_every_response_names_its_replica(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/healthz"),
        await client.get("/me"),
        await client.post("/login", json={}),
    ):
        assert response.headers["x-served-by"] == "test-replica"
