"""My sessions: list, revoke one, log out everywhere."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response

from .deps import CurrentUser, ManagerDep, SessionDep

router = APIRouter(tags=["sessions"])

SessionRef = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


@router.get("/sessions")
async def list_sessions(
    user: CurrentUser, session: SessionDep, manager: ManagerDep
) -> dict[str, Any]:
    infos = await manager.list_user_sessions(user)
    return {
        "sessions": [
            {
                "id": info.key,  # the store key: names a session, cannot be used as a cookie
                "current": info.key == session.key,
                "created_ms": info.created_ms,
                "expires_at_ms": info.expires_at_ms,
                "idle_expires_at_ms": info.idle_expires_at_ms,
            }
            for info in infos
        ]
    }


@router.delete("/sessions/{ref}", status_code=204)
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


@router.post("/logout-all")
async def logout_all(user: CurrentUser, session: SessionDep, manager: ManagerDep) -> dict[str, int]:
    revoked = await manager.revoke_all(user)
    session.invalidate()  # also expires this client's cookie
    return {"revoked": len(revoked)}
