"""A per-session counter: the simplest consistency probe (each answer = previous + 1)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from .deps import reply, user_session
from .schemas import LOGGED_IN, NEEDS_LOGIN, STATE_CHANGE, Counter, answers

router = APIRouter(tags=["counter"])


def _increment(value: int | None) -> int:
    return (value or 0) + 1


@router.post(
    "/counter",
    response_model=None,
    responses=answers(Counter, *LOGGED_IN, *STATE_CHANGE, 409),
    openapi_extra=NEEDS_LOGIN,
)
async def increment(request: Request) -> Response:
    _, session = await user_session(request)
    session.apply("counter", _increment)
    await session.save()  # a concurrent increment re-applies ours: answer the stored value
    return reply({"counter": session["counter"]})
