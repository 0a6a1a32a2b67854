"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..readiness import StoreHealth
from ..version import version

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process answers (and says which version it runs). Nothing else is checked: a
    restart would not fix the store."""
    return {"status": "ok", "version": version()}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    health: StoreHealth = request.state.store_health
    report: dict[str, Any] = await health.check()
    status = 200 if report["ready"] else 503
    headers = {"Retry-After": str(request.state.retry_after)} if status == 503 else None
    return JSONResponse(report, status_code=status, headers=headers)
