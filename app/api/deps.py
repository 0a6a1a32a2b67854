"""Dependencies as `Annotated` aliases, so route signatures read like prose."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from ..auth.throttle import LoginThrottle
from ..auth.users import UserDirectory
from ..sessions import Session, SessionManager
from .order_book import OrderBook


async def _session(request: Request) -> Session:
    session: Session = request.scope["session"]
    return await session.load()


async def _current_user(session: Annotated[Session, Depends(_session)]) -> str:
    user = session.user_id
    if user is None:
        raise HTTPException(401, "not logged in")
    return user


def _manager(request: Request) -> SessionManager:
    return request.state.manager  # type: ignore[no-any-return]


def _users(request: Request) -> UserDirectory:
    return request.state.users  # type: ignore[no-any-return]


def _orders(request: Request) -> OrderBook:
    return request.state.orders  # type: ignore[no-any-return]


def _throttle(request: Request) -> LoginThrottle:
    return request.state.throttle  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(_session)]
CurrentUser = Annotated[str, Depends(_current_user)]
ManagerDep = Annotated[SessionManager, Depends(_manager)]
UsersDep = Annotated[UserDirectory, Depends(_users)]
ThrottleDep = Annotated[LoginThrottle, Depends(_throttle)]
OrdersDep = Annotated[OrderBook, Depends(_orders)]
