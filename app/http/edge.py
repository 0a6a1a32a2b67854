"""What every HTTP request passes through, as one pure-ASGI layer (each separate middleware
wrapped the whole request, and its response, once more):

- `X-Served-By: <replica>` on every response, errors included: this layer sits outside
  Starlette's error handler;
- the request's latency, by method, route template (never the raw path) and status;
- with a metrics port: `/metrics` there only, and nothing else there (an ingress routing the
  app's port never exposes it);
- a body over the budget: 413 before a handler buffers it;
- a cross-site request that changes state: 403. Browsers say where a request comes from
  (`Origin`, `Sec-Fetch-Site`); clients that send neither (curl, Locust, other services) are
  not browsers and pass. An `Origin` that cannot be parsed is cross-site.

Refusals are JSON `{"detail": ...}` like every other error.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from prometheus_client import Histogram
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..ops.metrics import HTTP_LATENCY

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Any other method is counted as OTHER: a label per client-chosen token would let anyone grow
# the metrics without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TOO_LARGE = JSONResponse({"detail": "request body too large"}, status_code=413)
_CROSS_SITE = JSONResponse({"detail": "cross-site request refused"}, status_code=403)
_NOT_FOUND = JSONResponse({"detail": "Not Found"}, status_code=404)


class Edge:
    def __init__(
        self,
        app: ASGIApp,
        *,
        replica: str,
        max_body_bytes: int,
        trusted_origins: frozenset[str] = frozenset(),
        metrics: ASGIApp | None = None,
        metrics_port: int = 0,
    ) -> None:
        self.app = app
        self.served_by = (b"x-served-by", replica.encode("latin-1", "replace"))
        self.max_body_bytes = max_body_bytes
        self.trusted_origins = trusted_origins
        self.metrics = metrics
        self.metrics_port = metrics_port
        self._latency: dict[tuple[str, str, int], Histogram] = {}  # label children, made once

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_with_replica(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), self.served_by]
            await send(message)

        try:
            await self._handle(scope, receive, send_with_replica)
        finally:
            self._observe(scope, status, time.perf_counter() - started)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.metrics_port:
            server = scope.get("server")
            on_metrics_port = server is not None and server[1] == self.metrics_port
            if on_metrics_port or scope["path"] == "/metrics":
                wanted = on_metrics_port and scope["path"] == "/metrics"
                await (self.metrics if wanted and self.metrics else _NOT_FOUND)(
                    scope, receive, send
                )
                return
        length = chunked = origin = fetch_site = host = None
        for name, value in scope["headers"]:  # one pass over the headers for every check
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"origin":
                origin = origin or value
            elif name == b"sec-fetch-site":
                fetch_site = value
            elif name == b"host":
                host = host or value
        if scope["method"] not in SAFE_METHODS and self._cross_site(origin, fetch_site, host):
            await _CROSS_SITE(scope, receive, send)
            return
        if length is not None:
            # The server never delivers more than the declared length.
            if not length.isdigit() or int(length) > self.max_body_bytes:
                await _TOO_LARGE(scope, receive, send)
                return
        elif chunked:
            replay = await self._buffered(scope, receive, send)
            if replay is None:
                return
            receive = replay
        await self.app(scope, receive, send)

    def _cross_site(
        self, origin: bytes | None, fetch_site: bytes | None, host: bytes | None
    ) -> bool:
        if origin is not None:
            text = origin.decode("latin-1")
            if text in self.trusted_origins:
                return False
            try:
                netloc = urlsplit(text).netloc
            except ValueError:  # e.g. "http://[::1": nothing a browser sends; refuse it
                return True
            # Scheme is left out: TLS usually ends at the ingress, so the app sees http.
            return netloc != (host or b"").decode("latin-1")
        return fetch_site in (b"cross-site", b"same-site")

    async def _buffered(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        """A chunked body declares no length: read it (up to the budget) before the app runs;
        None when it was over the budget (and refused)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                await _TOO_LARGE(scope, receive, send)
                return None
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        return replay

    def _observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        key = (method, template, status)
        child = self._latency.get(key)
        if child is None:
            child = self._latency[key] = HTTP_LATENCY.labels(method, template, str(status))
        child.observe(seconds)
