"""What a route reaches through its request: the session (loaded), the logged-in user, the
app's services, and the JSON answer. Plain calls, not FastAPI dependencies: solving a
dependency graph on every request, and validating every answer against its model, cost more
than the session layer itself (docs/benchmarks.md). The models still document each answer
in the OpenAPI document (`schemas.py`), and the schemathesis run checks that they match."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException, Request
from starlette.responses import Response

from ..auth.throttle import LoginThrottle
from ..auth.users import UserDirectory
from ..sessions import Session, SessionManager
from .order_book import OrderBook


@dataclass(frozen=True, slots=True)
class Services:
    """What the routes use, made once at start-up (the lifespan state's "services")."""

    manager: SessionManager
    users: UserDirectory
    throttle: LoginThrottle
    orders: OrderBook


def services(request: Request) -> Services:
    return request.scope["state"]["services"]  # type: ignore[no-any-return]


async def session_of(request: Request) -> Session:
    session: Session = request.scope["session"]
    return await session.load()


async def user_session(request: Request) -> tuple[str, Session]:
    """The logged-in user and their session; 401 when anonymous."""
    session = await session_of(request)
    user = session.user_id
    if user is None:
        raise HTTPException(401, "not logged in")
    return user, session


def reply(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")
