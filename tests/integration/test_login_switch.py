"""A login as another user starts from an empty session; the previous user's session ends."""

from __future__ import annotations

import httpx

from tests.conftest import login, request_with_cookie, sibling


async def _sessions_of(client: httpx.AsyncClient, cookie: str) -> list[str]:
    response = await request_with_cookie(client, "GET", "/sessions", cookie)
    assert response.status_code == 200, response.text
    return [entry["id"] for entry in response.json()["sessions"]]


async def test_login_as_another_user_starts_empty(client: httpx.AsyncClient) -> None:
    await login(client, "user-0001")
    await client.post("/cart/items", json={"item_id": "a-sku", "qty": 2})
    await client.post("/counter")
    headers = {"Idempotency-Key": "order-of-user-1"}
    assert (await client.post("/checkout", headers=headers)).status_code == 201
    await client.post("/cart/items", json={"item_id": "left-in-cart", "qty": 1})

    await login(client, "user-0002")

    assert (await client.get("/cart")).json() == {"items": {}, "count": 0}
    assert (await client.post("/counter")).json() == {"counter": 1}
    replay = await client.post("/checkout", headers=headers)
    assert replay.status_code == 409  # user 2's cart is empty: no replay of user 1's order
    assert "idempotent-replayed" not in replay.headers


async def test_login_as_another_user_ends_the_previous_session(client: httpx.AsyncClient) -> None:
    await login(client, "user-0001")
    first_cookie = client.cookies["__Host-sid"]
    other_device = sibling(client)
    await login(other_device, "user-0001")
    witness = other_device.cookies["__Host-sid"]
    assert len(await _sessions_of(client, witness)) == 2

    await login(client, "user-0002")
    second_cookie = client.cookies["__Host-sid"]

    assert second_cookie != first_cookie
    assert (await request_with_cookie(client, "GET", "/me", first_cookie)).status_code == 401
    assert len(await _sessions_of(client, witness)) == 1  # only the other device is left
    assert len(await _sessions_of(client, second_cookie)) == 1
    me = await request_with_cookie(client, "GET", "/me", second_cookie)
    assert me.json()["user"] == "user-0002"


async def test_login_again_as_the_same_user_keeps_the_data(client: httpx.AsyncClient) -> None:
    await login(client, "user-0001")
    await client.post("/cart/items", json={"item_id": "kept", "qty": 3})
    before = client.cookies["__Host-sid"]
    await login(client, "user-0001")
    assert client.cookies["__Host-sid"] != before  # rotated all the same
    assert (await client.get("/cart")).json()["items"] == {"kept": 3}
    assert len(await _sessions_of(client, client.cookies["__Host-sid"])) == 1
