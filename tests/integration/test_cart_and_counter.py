"""Cart, counter and exactly-once checkout, on both stores."""

from __future__ import annotations

import asyncio
from typing import Any

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


async def test_a_regular_shopper_never_fills_the_session(client: httpx.AsyncClient) -> None:
    """Orders live outside the session: 30 checkouts of 60-line carts (8-character SKUs)
    leave the cart its whole budget, and every order can still be replayed."""
    await login(client)
    orders = {}
    for n in range(30):
        for line in range(60):
            added = await client.post(
                "/cart/items", json={"item_id": f"s{n:02d}-{line:04d}", "qty": 2}
            )
            assert added.status_code == 200, (n, line, added.text)
        key = f"checkout-{n:04d}"
        placed = await client.post("/checkout", headers={"Idempotency-Key": key})
        assert placed.status_code == 201, (n, placed.text)
        orders[key] = placed.json()
    for key in ("checkout-0029", "checkout-0020"):
        replay = await client.post("/checkout", headers={"Idempotency-Key": key})
        assert replay.status_code == 201 and replay.json() == orders[key]
        assert replay.headers["idempotent-replayed"] == "true"


async def test_a_cart_over_the_session_budget_says_what_to_do(
    store_kind: str, settings_for: Any, client_for: Any
) -> None:
    client = await client_for(settings_for(store_kind, session_max_bytes=1024))
    await login(client)
    for line in range(100):
        added = await client.post("/cart/items", json={"item_id": f"sku-{line:04d}", "qty": 1})
        if added.status_code != 200:
            break
    assert added.status_code == 413
    assert "remove items or check out" in added.json()["detail"]
