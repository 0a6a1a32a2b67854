"""The one place a `SessionError` becomes an HTTP response (used by middleware and routes)."""

from __future__ import annotations

from starlette.responses import JSONResponse

from .errors import SessionError, StoreUnavailable


def error_response(exc: SessionError, retry_after: int) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if isinstance(exc, StoreUnavailable) else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)
