"""Pure ASGI session middleware: cookie in, lazy session on the scope, commit, cookie out.

A request that never calls `await session.load()` costs no store round trip. Changes are
committed when the response starts (before its body is sent); a commit that fails replaces
the response with the matching error (409/413/401/503) so nothing is acknowledged that was
not stored.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .deadline import close_budget, open_budget
from .errors import SessionEnded, SessionError
from .manager import SessionManager
from .responses import error_response
from .session import Session


class SessionMiddleware:
    def __init__(
        self, app: ASGIApp, manager: SessionManager, *, store_deadline: float, retry_after: int
    ) -> None:
        self.app = app
        self.manager = manager
        self.store_deadline = store_deadline
        self.retry_after = retry_after
        self.cookies = manager.cookies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        session = self.manager.new_session(self.cookies.read(_cookie_header(scope)))
        scope["session"] = session
        replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the app's own response was swapped for an error: drop its body
            if message["type"] == "http.response.start":
                try:
                    if session.dirty:
                        await self.manager.save(session)
                except SessionError as exc:
                    replaced = True
                    if isinstance(exc, SessionEnded):
                        session.ended()
                    response = error_response(exc, self.retry_after)
                    self._add_cookie(response.headers, session)
                    await response(scope, receive, send)
                    return
                if session.cookie:
                    self._add_cookie(MutableHeaders(scope=message), session)
            await send(message)

        budget = open_budget(self.store_deadline)
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            close_budget(budget)

    def _add_cookie(self, headers: MutableHeaders, session: Session) -> None:
        if session.cookie == "set" and session.id:
            lifetime = self.manager.config.lifetime_s
            headers.append("set-cookie", self.cookies.set_header(session.id, lifetime))
        elif session.cookie == "clear":
            headers.append("set-cookie", self.cookies.clear_header())


def _cookie_header(scope: Scope) -> str | None:
    # HTTP/2 clients may split cookies over several headers.
    values = [value.decode("latin-1") for name, value in scope["headers"] if name == b"cookie"]
    return "; ".join(values) if values else None
