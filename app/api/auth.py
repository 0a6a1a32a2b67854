"""Log in, log out, who am I."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..auth.users import USERNAME_PATTERN
from .deps import reply, services, session_of, user_session
from .schemas import (
    JSON_BODY,
    LOGGED_IN,
    NEEDS_LOGIN,
    SESSION,
    STATE_CHANGE,
    LoginResult,
    Me,
    answers,
)

router = APIRouter(tags=["auth"])

_DEVICE_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class DeviceCookie:
    """The browser's device token (see `throttle.py`): HttpOnly, host-only, strict."""

    secure: bool
    days: int

    @property
    def name(self) -> str:
        return "__Host-sfdev" if self.secure else "sfdev"

    def read(self, request: Request) -> str | None:
        value = request.cookies.get(self.name)
        return value if value and _DEVICE_TOKEN.fullmatch(value) else None

    def write(self, response: Response, token: str) -> None:
        response.set_cookie(
            self.name,
            token,
            max_age=self.days * 86_400,
            path="/",
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )


class Credentials(BaseModel):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


@router.post(
    "/login",
    response_model=None,
    responses=answers(LoginResult, *JSON_BODY, 401, *STATE_CHANGE, 429, *SESSION),
)
async def login(credentials: Credentials, request: Request) -> Response:
    """Log in: a new session ID in the cookie (the old one stops working). Logging in as
    another user than the session's ends that session and starts an empty one."""
    session, app = await session_of(request), services(request)
    throttle, users = app.throttle, app.users
    client = request.client.host if request.client else "unknown"
    device_cookie: DeviceCookie = request.state.device_cookie
    attempt = await throttle.attempt(credentials.username, client, device_cookie.read(request))
    if attempt.wait_s:
        raise HTTPException(
            429, "too many failed logins", headers={"Retry-After": str(attempt.wait_s)}
        )
    if not await users.verify(credentials.username, credentials.password):
        await throttle.failed(attempt)
        raise HTTPException(401, "invalid username or password")
    token = await throttle.succeeded(attempt)
    session.log_in(credentials.username)  # a new session ID: no fixation
    session["login_at"] = int(time.time())
    await session.save()  # a login is acknowledged only once replicas hold it
    response = reply({"user": credentials.username})
    device_cookie.write(response, token)
    return response


@router.post(
    "/logout",
    status_code=204,
    response_model=None,
    responses=answers(None, *STATE_CHANGE, *SESSION, status=204),
)
async def logout(request: Request) -> Response:
    """End this session server-side and expire the cookie."""
    (await session_of(request)).invalidate()
    return Response(status_code=204)


@router.get(
    "/me", response_model=None, responses=answers(Me, *LOGGED_IN), openapi_extra=NEEDS_LOGIN
)
async def me(request: Request) -> Response:
    user, session = await user_session(request)
    times = {"created_ms": session.created_ms, "expires_at_ms": session.expires_at_ms}
    return reply({"user": user, "login_at": session.get("login_at"), "session": times})
