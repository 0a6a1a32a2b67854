"""Adds `X-Served-By: <replica>` to every response, so clients can see pod hops."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServedByMiddleware:
    def __init__(self, app: ASGIApp, replica: str) -> None:
        self.app = app
        self.header = (b"x-served-by", replica.encode("latin-1", "replace"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_header)
