"""A shopping cart in the session, and an exactly-once checkout."""

from __future__ import annotations

import secrets
import time
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Path, Request, Response
from pydantic import BaseModel, Field

from ..sessions import SessionConflict, SessionTooLarge
from .deps import reply, services, user_session
from .schemas import JSON_BODY, LOGGED_IN, NEEDS_LOGIN, STATE_CHANGE, Cart, Order, answers

router = APIRouter(tags=["cart"])

ITEM_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
MAX_QTY_PER_ITEM = 999
MAX_DISTINCT_ITEMS = 100
# Checkouts remembered per session (idempotency key -> order ID, ~100 bytes each): bounded, so
# together with a full cart they stay well inside the session's byte budget.
CHECKOUTS_KEPT = 20
CART_FULL = "the cart is full: remove items or check out"


class CartLine(BaseModel):
    item_id: Annotated[str, Field(pattern=ITEM_ID_PATTERN)]
    qty: Annotated[int, Field(ge=1, le=99)]


def _cart_view(cart: dict[str, int] | None) -> Response:
    items = cart or {}
    return reply({"items": items, "count": sum(items.values())})


@router.get(
    "/cart", response_model=None, responses=answers(Cart, *LOGGED_IN), openapi_extra=NEEDS_LOGIN
)
async def get_cart(request: Request) -> Response:
    _, session = await user_session(request)
    return _cart_view(session.get("cart"))


@router.post(
    "/cart/items",
    response_model=None,
    responses=answers(
        Cart,
        *JSON_BODY,
        *LOGGED_IN,
        *STATE_CHANGE,
        409,
        links={
            "RemoveAddedItem": {
                "operationId": "remove_item_cart_items__item_id__delete",
                "parameters": {"item_id": "$request.body#/item_id"},
            }
        },
    ),
    openapi_extra=NEEDS_LOGIN,
)
async def add_item(line: CartLine, request: Request) -> Response:
    _, session = await user_session(request)

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
    try:
        await session.save()  # concurrent tabs: our add is re-applied on top of theirs
    except SessionTooLarge as exc:
        raise SessionTooLarge(f"{CART_FULL} ({exc.detail})") from exc
    return _cart_view(session["cart"])


@router.delete(
    "/cart/items/{item_id}",
    response_model=None,
    responses=answers(Cart, *LOGGED_IN, *STATE_CHANGE, 404, 409),
    openapi_extra=NEEDS_LOGIN,
)
async def remove_item(
    item_id: Annotated[str, Path(pattern=ITEM_ID_PATTERN)], request: Request
) -> Response:
    _, session = await user_session(request)
    if item_id not in (session.get("cart") or {}):
        raise HTTPException(404, "item not in cart")

    def remove(cart: dict[str, int] | None) -> dict[str, int]:
        return {k: v for k, v in (cart or {}).items() if k != item_id}

    session.apply("cart", remove)
    await session.save()
    return _cart_view(session["cart"])


@router.post(
    "/checkout",
    status_code=201,
    response_model=None,
    responses=answers(
        Order,
        *LOGGED_IN,
        *STATE_CHANGE,
        409,
        status=201,
        description="The order; the same one again for a repeated Idempotency-Key.",
        headers={
            "Idempotent-Replayed": {
                "description": "`true` when this key's order was placed before.",
                "schema": {"type": "string", "enum": ["true"]},
            }
        },
    ),
    openapi_extra=NEEDS_LOGIN,
)
async def checkout(
    idempotency_key: Annotated[
        str, Header(pattern=r"^[A-Za-z0-9_.:-]{8,64}$", alias="Idempotency-Key")
    ],
    request: Request,
) -> Response:
    """Turns the cart into an order once per Idempotency-Key: a repeat, on any replica,
    even while the first is still running, returns the first order."""
    user, session = await user_session(request)
    orders = services(request).orders
    for _attempt in range(3):
        checkouts: dict[str, str] = session.get("checkouts") or {}
        if idempotency_key in checkouts:
            placed = await orders.get(user, checkouts[idempotency_key])
            if placed is None:
                raise HTTPException(409, "this Idempotency-Key's order is no longer kept")
            return reply(placed, 201, {"Idempotent-Replayed": "true"})
        cart = session.get("cart") or {}
        if not cart:
            raise HTTPException(409, "cart is empty")
        order = {
            "order_id": secrets.token_hex(8),
            "items": cart,
            "count": sum(cart.values()),
            "created_at": int(time.time()),
        }
        # The order first: a session commit that then fails leaves an unreferenced order,
        # never a checkout record pointing at nothing.
        await orders.put(user, order)
        kept = dict(list(checkouts.items())[-(CHECKOUTS_KEPT - 1) :])
        session["checkouts"] = {**kept, idempotency_key: order["order_id"]}
        session["cart"] = {}
        try:
            await session.save()  # the cart empties and the record appears together, or not
            return reply(order, 201)
        except SessionConflict:
            await session.reload()  # a twin request (or a cart change) won: look again
    raise HTTPException(409, "checkout kept conflicting, retry")
