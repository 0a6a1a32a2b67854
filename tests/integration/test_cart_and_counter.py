"""Cart, counter and exactly-once checkout, on both stores."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import login


async def test_cart_and_counter_need_login(client: httpx.AsyncClient) -> None:
    assert (await client.get("/cart")).status_code == 401
    assert (await client.post("/counter")).status_code == 401
    assert (await client.post("/cart/items", json={"item_id": "a", "qty": 1})).status_code == 401


async def test_counter_counts_up_by_one(client: httpx.AsyncClient) -> None:
    await login(client)
    values = [(await client.post("/counter")).json()["counter"] for _ in range(5)]
    assert values == [1, 2, 3, 4, 5]


async def test_concurrent_counter_increments_are_all_kept(client: httpx.AsyncClient) -> None:
    await login(client)
    responses = await asyncio.gather(*(client.post("/counter") for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses]
    assert sorted(r.json()["counter"] for r in responses) == list(range(1, 21))


async def test_cart_add_remove(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.post("/cart/items", json={"item_id": "apple", "qty": 2})
    added = await client.post("/cart/items", json={"item_id": "apple", "qty": 1})
    assert added.json()["items"] == {"apple": 3}
    await client.post("/cart/items", json={"item_id": "pear", "qty": 1})
    removed = await client.delete("/cart/items/apple")
    assert removed.status_code == 200 and removed.json()["items"] == {"pear": 1}
    assert (await client.get("/cart")).json() == {"items": {"pear": 1}, "count": 1}
    assert (await client.delete("/cart/items/apple")).status_code == 404


async def test_concurrent_cart_adds_from_tabs_all_land(client: httpx.AsyncClient) -> None:
    await login(client)
    items = [f"item-{i}" for i in range(12)]
    responses = await asyncio.gather(
        *(client.post("/cart/items", json={"item_id": item, "qty": 1}) for item in items)
    )
    assert all(r.status_code == 200 for r in responses)
    assert set((await client.get("/cart")).json()["items"]) == set(items)


async def test_cart_survives_login_rotation(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.post("/cart/items", json={"item_id": "kept", "qty": 4})
    await login(client)  # re-login rotates the ID and keeps the data
    assert (await client.get("/cart")).json()["items"] == {"kept": 4}


async def test_checkout_is_exactly_once_per_key(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.post("/cart/items", json={"item_id": "book", "qty": 2})
    headers = {"Idempotency-Key": "order-key-0001"}
    first = await client.post("/checkout", headers=headers)
    again = await client.post("/checkout", headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and first.json()["items"] == {"book": 2}
    assert again.headers["idempotent-replayed"] == "true"
    assert (await client.get("/cart")).json()["items"] == {}
    other = await client.post("/checkout", headers={"Idempotency-Key": "order-key-0002"})
    assert other.status_code == 409  # the cart is empty now


async def test_simultaneous_duplicate_checkouts_make_one_order(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.post("/cart/items", json={"item_id": "lamp", "qty": 1})
    headers = {"Idempotency-Key": "double-click-1"}
    responses = await asyncio.gather(*(client.post("/checkout", headers=headers) for _ in range(4)))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["order_id"] for r in responses}) == 1


async def test_checkout_needs_a_valid_idempotency_key(client: httpx.AsyncClient) -> None:
    await login(client)
    await client.post("/cart/items", json={"item_id": "lamp", "qty": 1})
    assert (await client.post("/checkout")).status_code == 422
    bad = await client.post("/checkout", headers={"Idempotency-Key": "no spaces allowed"})
    assert bad.status_code == 422
