"""Log in, log out, who am I."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field

from ..users import USERNAME_PATTERN
from .deps import CurrentUser, SessionDep, ThrottleDep, UsersDep

router = APIRouter(tags=["auth"])


class Credentials(BaseModel):
    username: Annotated[str, Field(pattern=USERNAME_PATTERN)]
    password: Annotated[str, Field(min_length=1, max_length=1024)]


@router.post("/login")
async def login(
    credentials: Credentials,
    request: Request,
    session: SessionDep,
    users: UsersDep,
    throttle: ThrottleDep,
) -> dict[str, str]:
    client = request.client.host if request.client else "unknown"
    wait = await throttle.blocked_for(credentials.username, client)
    if wait:
        raise HTTPException(429, "too many failed logins", headers={"Retry-After": str(wait)})
    if not await users.verify(credentials.username, credentials.password):
        await throttle.record_failure(credentials.username, client)
        raise HTTPException(401, "invalid username or password")
    await throttle.record_success(credentials.username, client)
    session.log_in(credentials.username)  # a new session ID: no fixation
    session["login_at"] = int(time.time())
    await session.save()  # a login is acknowledged only once replicas hold it
    return {"user": credentials.username}


@router.post("/logout", status_code=204)
async def logout(session: SessionDep) -> Response:
    session.invalidate()
    return Response(status_code=204)


@router.get("/me")
async def me(user: CurrentUser, session: SessionDep) -> dict[str, object]:
    return {
        "user": user,
        "login_at": session.get("login_at"),
        "session": {"created_ms": session.created_ms, "expires_at_ms": session.expires_at_ms},
    }
