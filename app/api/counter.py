"""A per-session counter: the simplest consistency probe (each answer = previous + 1)."""

from __future__ import annotations

from fastapi import APIRouter

from .deps import CurrentUser, SessionDep
from .schemas import LOGGED_IN, NEEDS_LOGIN, STATE_CHANGE, Counter, errors

router = APIRouter(tags=["counter"])


def _increment(value: int | None) -> int:
    return (value or 0) + 1


@router.post(
    "/counter", responses=errors(*LOGGED_IN, *STATE_CHANGE, 409), openapi_extra=NEEDS_LOGIN
)
async def increment(_: CurrentUser, session: SessionDep) -> Counter:
    session.apply("counter", _increment)
    await session.save()  # a concurrent increment re-applies ours: answer the stored value
    return Counter(counter=session["counter"])
