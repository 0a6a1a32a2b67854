"""My sessions: list, revoke one, log out everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response

from .deps import reply, services, user_session
from .schemas import LOGGED_IN, NEEDS_LOGIN, STATE_CHANGE, Revoked, SessionList, answers

router = APIRouter(tags=["sessions"])

SessionRef = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


_REVOCABLE = {
    "RevokeFirstSession": {
        "operationId": "revoke_session_sessions__ref__delete",
        "parameters": {"ref": "$response.body#/sessions/0/id"},
    }
}


@router.get(
    "/sessions",
    response_model=None,
    responses=answers(SessionList, *LOGGED_IN, links=_REVOCABLE),
    openapi_extra=NEEDS_LOGIN,
)
async def list_sessions(request: Request) -> Response:
    """The user's live sessions, oldest first."""
    user, session = await user_session(request)
    infos = await services(request).manager.list_user_sessions(user)
    entries = [
        {
            "id": info.key,  # the store key: names a session, cannot be used as a cookie
            "current": info.key == session.key,
            "created_ms": info.created_ms,
            "expires_at_ms": info.expires_at_ms,
            "idle_expires_at_ms": info.idle_expires_at_ms,
        }
        for info in infos
    ]
    return reply({"sessions": entries})


@router.delete(
    "/sessions/{ref}",
    status_code=204,
    response_model=None,
    responses=answers(None, *LOGGED_IN, *STATE_CHANGE, 404, status=204),
    openapi_extra=NEEDS_LOGIN,
)
async def revoke_session(ref: SessionRef, request: Request) -> Response:
    user, session = await user_session(request)
    manager = services(request).manager
    if ref == session.key:
        session.invalidate()
    elif ref in {info.key for info in await manager.list_user_sessions(user)}:
        await manager.revoke(user, [ref])
    else:
        raise HTTPException(404, "no such session")
    return Response(status_code=204)


@router.post(
    "/logout-all",
    response_model=None,
    responses=answers(Revoked, *LOGGED_IN, *STATE_CHANGE),
    openapi_extra=NEEDS_LOGIN,
)
async def logout_all(request: Request) -> Response:
    """Sign out every session of the user, this one included."""
    user, session = await user_session(request)
    revoked = await services(request).manager.revoke_all(user)
    session.invalidate()  # also expires this client's cookie
    return reply({"revoked": len(revoked)})
