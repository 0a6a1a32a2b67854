"""What the routes answer, typed for the OpenAPI document, and the errors each can give."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class Problem(BaseModel):
    """Every error that is not a validation error: a sentence a person can act on."""

    detail: str


RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    }
}
_DESCRIPTIONS = {
    400: "The body is not JSON text at all (e.g. not UTF-8).",
    401: "Not logged in, or the session ended while the request ran.",
    403: "A cross-site request that changes state (CSRF), refused.",
    404: "No such item or session.",
    409: "A conflict: a concurrent change of the same session key, or a limit of the cart.",
    413: "The request body, or the session it would make, is over its size budget.",
    429: "Too many failed logins: locked for Retry-After seconds.",
    503: "The session store is unavailable or failing over: retry after Retry-After seconds.",
}


def answers(
    model: type[BaseModel] | None, *codes: int, status: int = 200, **success: Any
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route that returns its own Response: its success answer (`model`,
    plus e.g. `links` or `headers`) and each error status it can give besides 422."""
    ok: dict[str, Any] = {"description": "Success", **success}
    if model is not None:
        ok["model"] = model
    return {status: ok, **errors(*codes)}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status it can answer besides success and 422."""
    documented: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        documented[code] = {"model": Problem, "description": _DESCRIPTIONS[code]}
        if code in (429, 503):
            documented[code]["headers"] = RETRY_AFTER
    return documented


SESSION_SCHEME = "session"
# `openapi_extra` of every route that needs a logged-in user (the `CurrentUser` dependency).
NEEDS_LOGIN: dict[str, Any] = {"security": [{SESSION_SCHEME: []}]}

# A request that changes state passes the origin check (403) and the body budget (413); one
# that loads the session may find the store away (503).
STATE_CHANGE = (403, 413)
SESSION = (503,)
JSON_BODY = (400,)  # a body FastAPI cannot even decode (decodable but invalid JSON: 422)
LOGGED_IN = (401, 503)


class LoginResult(BaseModel):
    user: str


class SessionTimes(BaseModel):
    created_ms: int = Field(description="When the session was created (Unix ms).")
    expires_at_ms: int = Field(description="The end of its absolute lifetime (Unix ms).")


class Me(BaseModel):
    user: str
    login_at: int | None = Field(description="When this session logged in (Unix seconds).")
    session: SessionTimes


class Cart(BaseModel):
    items: dict[str, int] = Field(description="Item ID -> quantity.")
    count: int = Field(description="Total quantity.")


class Order(BaseModel):
    order_id: str
    items: dict[str, int]
    count: int
    created_at: int = Field(description="Unix seconds.")


class Counter(BaseModel):
    counter: int


class SessionEntry(BaseModel):
    id: str = Field(description="Names the session (its store key); not usable as a cookie.")
    current: bool = Field(description="The session this request came with.")
    created_ms: int
    expires_at_ms: int
    idle_expires_at_ms: int


class SessionList(BaseModel):
    sessions: list[SessionEntry]


class Revoked(BaseModel):
    revoked: int = Field(description="How many sessions were signed out.")


class Health(BaseModel):
    status: Literal["ok"]
    version: str = Field(description="The version of sessionfleet this replica runs.")


class Readiness(BaseModel):
    ready: bool
    store: Literal["ok", "unavailable"]
    store_shared: bool = Field(description="False: sessions live in this process only.")
    seconds_since_store_ok: float | None
