"""My sessions: list, revoke one, log out everywhere."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response

from .deps import CurrentUser, ManagerDep, SessionDep
from .schemas import (
    LOGGED_IN,
    NEEDS_LOGIN,
    STATE_CHANGE,
    Revoked,
    SessionEntry,
    SessionList,
    errors,
)

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
    responses={**errors(*LOGGED_IN), 200: {"links": _REVOCABLE}},
    openapi_extra=NEEDS_LOGIN,
)
async def list_sessions(user: CurrentUser, session: SessionDep, manager: ManagerDep) -> SessionList:
    """The user's live sessions, oldest first."""
    infos = await manager.list_user_sessions(user)
    return SessionList(
        sessions=[
            SessionEntry(
                id=info.key,  # the store key: names a session, cannot be used as a cookie
                current=info.key == session.key,
                created_ms=info.created_ms,
                expires_at_ms=info.expires_at_ms,
                idle_expires_at_ms=info.idle_expires_at_ms,
            )
            for info in infos
        ]
    )


@router.delete(
    "/sessions/{ref}",
    status_code=204,
    responses=errors(*LOGGED_IN, *STATE_CHANGE, 404),
    openapi_extra=NEEDS_LOGIN,
)
async def revoke_session(
    ref: SessionRef, user: CurrentUser, session: SessionDep, manager: ManagerDep
) -> Response:
    if ref == session.key:
        session.invalidate()
    elif ref in {info.key for info in await manager.list_user_sessions(user)}:
        await manager.revoke(user, [ref])
    else:
        raise HTTPException(404, "no such session")
    return Response(status_code=204)


@router.post("/logout-all", responses=errors(*LOGGED_IN, *STATE_CHANGE), openapi_extra=NEEDS_LOGIN)
async def logout_all(user: CurrentUser, session: SessionDep, manager: ManagerDep) -> Revoked:
    """Sign out every session of the user, this one included."""
    revoked = await manager.revoke_all(user)
    session.invalidate()  # also expires this client's cookie
    return Revoked(revoked=len(revoked))
