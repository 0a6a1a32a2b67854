"""Refuses cross-site state-changing requests (CSRF) with 403.

Browsers say where a request comes from (`Sec-Fetch-Site`, `Origin`); a request that says
it comes from another site is refused before it reaches a handler. Clients that send
neither header (curl, Locust, other services) are not browsers and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class OriginCheckMiddleware:
    def __init__(self, app: ASGIApp, trusted_origins: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.trusted_origins = trusted_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and self._cross_site(Headers(scope=scope))
        ):
            response = JSONResponse({"detail": "cross-site request refused"}, 403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _cross_site(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is not None:
            if origin in self.trusted_origins:
                return False
            try:
                netloc = urlsplit(origin).netloc
            except ValueError:  # e.g. "http://[::1": nothing a browser sends; refuse it
                return True
            # Scheme is left out: TLS usually ends at the ingress, so the app sees http.
            return netloc != headers.get("host")
        return headers.get("sec-fetch-site") in ("cross-site", "same-site")
