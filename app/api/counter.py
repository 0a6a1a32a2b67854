"""A per-session counter: the simplest consistency probe (each answer = previous + 1)."""

from __future__ import annotations

from fastapi import APIRouter

from .deps import CurrentUser, SessionDep

router = APIRouter(tags=["counter"])


def _increment(value: int | None) -> int:
    return (value or 0) + 1


@router.post("/counter")
async def increment(_: CurrentUser, session: SessionDep) -> dict[str, int]:
    session.apply("counter", _increment)
    await session.save()  # a concurrent increment re-applies ours: answer the stored value
    return {"counter": session["counter"]}
