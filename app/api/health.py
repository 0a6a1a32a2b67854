"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from ..ops.readiness import StoreHealth
from ..ops.version import version
from .deps import reply
from .schemas import RETRY_AFTER, Health, Readiness, answers

router = APIRouter(tags=["health"])


@router.head("/healthz", response_model=None, responses=answers(Health))
@router.get("/healthz", response_model=None, responses=answers(Health))
async def healthz() -> Response:
    """The process answers (and says which version it runs). Nothing else is checked: a
    restart would not fix the store."""
    return reply({"status": "ok", "version": version()})


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Readiness,
        "description": "Not ready: the store has not answered within the grace.",
        "headers": RETRY_AFTER,
    }
}


@router.head("/readyz", response_model=None, responses={**answers(Readiness), **_NOT_READY})
@router.get("/readyz", response_model=None, responses={**answers(Readiness), **_NOT_READY})
async def readyz(request: Request) -> Response:
    """Ready while the store answers, or answered within the readiness grace (a failover is
    ridden out, not reported as every replica down at once)."""
    health: StoreHealth = request.state.store_health
    report: dict[str, Any] = await health.check()
    status = 200 if report["ready"] else 503
    headers = {"Retry-After": str(request.state.retry_after)} if status == 503 else None
    return reply(report, status, headers)
