"""A shopping cart in the session, and an exactly-once checkout."""

from __future__ import annotations

import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Response
from pydantic import BaseModel, Field

from ..sessions import SessionConflict
from .deps import CurrentUser, SessionDep

router = APIRouter(tags=["cart"])

ITEM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_QTY_PER_ITEM = 999
MAX_DISTINCT_ITEMS = 100
ORDERS_KEPT = 20  # idempotency records kept per session


class CartLine(BaseModel):
    item_id: Annotated[str, Field(pattern=ITEM_ID_PATTERN)]
    qty: Annotated[int, Field(ge=1, le=99)]


def _cart_view(cart: dict[str, int] | None) -> dict[str, Any]:
    items = cart or {}
    return {"items": items, "count": sum(items.values())}


@router.get("/cart")
async def get_cart(_: CurrentUser, session: SessionDep) -> dict[str, Any]:
    return _cart_view(session.get("cart"))


@router.post("/cart/items")
async def add_item(line: CartLine, _: CurrentUser, session: SessionDep) -> dict[str, Any]:
    def add(cart: dict[str, int] | None) -> dict[str, int]:
        cart = dict(cart or {})
        qty = cart.get(line.item_id, 0) + line.qty
        if qty > MAX_QTY_PER_ITEM:
            raise HTTPException(409, f"at most {MAX_QTY_PER_ITEM} of one item")
        if line.item_id not in cart and len(cart) >= MAX_DISTINCT_ITEMS:
            raise HTTPException(409, f"at most {MAX_DISTINCT_ITEMS} different items")
        cart[line.item_id] = qty
        return cart

    session.apply("cart", add)
    await session.save()  # concurrent tabs: our add is re-applied on top of theirs
    return _cart_view(session["cart"])


@router.delete("/cart/items/{item_id}")
async def remove_item(
    item_id: Annotated[str, Field(pattern=ITEM_ID_PATTERN)],
    _: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    if item_id not in (session.get("cart") or {}):
        raise HTTPException(404, "item not in cart")

    def remove(cart: dict[str, int] | None) -> dict[str, int]:
        return {k: v for k, v in (cart or {}).items() if k != item_id}

    session.apply("cart", remove)
    await session.save()
    return _cart_view(session["cart"])


@router.post("/checkout", status_code=201)
async def checkout(
    response: Response,
    idempotency_key: Annotated[
        str, Header(pattern=r"^[A-Za-z0-9_.:-]{8,64}$", alias="Idempotency-Key")
    ],
    _: CurrentUser,
    session: SessionDep,
) -> dict[str, Any]:
    """Turns the cart into an order once per Idempotency-Key: a repeat, on any replica,
    even while the first is still running, returns the first order."""
    for _attempt in range(3):
        orders: dict[str, Any] = session.get("orders") or {}
        if idempotency_key in orders:
            response.headers["Idempotent-Replayed"] = "true"
            return orders[idempotency_key]  # type: ignore[no-any-return]
        cart = session.get("cart") or {}
        if not cart:
            raise HTTPException(409, "cart is empty")
        order = {
            "order_id": secrets.token_hex(8),
            "items": cart,
            "count": sum(cart.values()),
            "created_at": int(time.time()),
        }
        kept = dict(list(orders.items())[-(ORDERS_KEPT - 1) :])
        session["orders"] = {**kept, idempotency_key: order}
        session["cart"] = {}
        try:
            await session.save()  # cart and order change together or not at all
            return order
        except SessionConflict:
            await session.reload()  # a twin request (or a cart change) won: look again
    raise HTTPException(409, "checkout kept conflicting, retry")
