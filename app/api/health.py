"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..ops.readiness import StoreHealth
from ..ops.version import version
from .schemas import RETRY_AFTER, Health, Readiness

router = APIRouter(tags=["health"])


@router.head("/healthz")
@router.get("/healthz")
async def healthz() -> Health:
    """The process answers (and says which version it runs). Nothing else is checked: a
    restart would not fix the store."""
    return Health(status="ok", version=version())


_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": Readiness,
        "description": "Not ready: the store has not answered within the grace.",
        "headers": RETRY_AFTER,
    }
}


@router.head("/readyz", response_model=Readiness, responses=_NOT_READY)
@router.get("/readyz", response_model=Readiness, responses=_NOT_READY)
async def readyz(request: Request) -> JSONResponse:
    """Ready while the store answers, or answered within the readiness grace (a failover is
    ridden out, not reported as every replica down at once)."""
    health: StoreHealth = request.state.store_health
    report: dict[str, Any] = await health.check()
    status = 200 if report["ready"] else 503
    headers = {"Retry-After": str(request.state.retry_after)} if status == 503 else None
    return JSONResponse(report, status_code=status, headers=headers)
