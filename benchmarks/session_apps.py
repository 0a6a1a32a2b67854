"""The apps the session benchmark compares: identical FastAPI endpoints, different sessions.

    POST /login    seed a session (benchmark setup, not timed)
    POST /counter  read + write: increment a per-session counter and return it
    GET  /me       read: the session's user (401 when anonymous)

Variants (BENCH_VARIANT): none (the ceiling: no session at all), starlette (Starlette's signed
cookie SessionMiddleware), starsessions (starsessions with its Redis store), ours-memory,
ours-redis (this project's session library), ours-app (the whole production app:
`app.main:create_app`, with origin checks, metrics and replica header).
Served by `uvicorn --factory benchmarks.session_apps:from_env`, with the production app's
garbage-collector settings (BENCH_GC=default: CPython's own).
"""

from __future__ import annotations

import itertools
import os
import secrets
from typing import Any

from fastapi import FastAPI, HTTPException, Request

from app.ops.gc_tuning import tune_for_serving

USER = "user-0001"


def session_cookie(set_cookies: list[str]) -> str:
    """The `name=value` of the session cookie among a login's Set-Cookie headers (a login also
    sets the device cookie of the login throttle, app/auth/throttle.py); "none=1" when there is
    none (the no-session variant)."""
    pairs = [header.split(";")[0] for header in set_cookies]
    return next((pair for pair in pairs if "sfdev=" not in pair), "none=1")


def from_env() -> Any:
    variant = os.environ["BENCH_VARIANT"]
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    app = BUILDERS[variant](redis_url)
    if os.environ.get("BENCH_GC") != "default":
        # Every variant is served like the production app (app/ops/gc_tuning.py), so the
        # comparison is of session layers, not of collector settings.
        tune_for_serving()
    return app


def _none(_: str) -> FastAPI:
    app = FastAPI()
    counter = itertools.count(1)

    @app.post("/login")
    async def login() -> dict[str, str]:
        return {"user": USER}

    @app.post("/counter")
    async def increment() -> dict[str, int]:
        return {"counter": next(counter)}

    @app.get("/me")
    async def me() -> dict[str, str]:
        return {"user": USER}

    return app


def _mapping_routes(app: FastAPI) -> FastAPI:
    """Routes for libraries that expose the session as `request.session` (a dict)."""

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        request.session["user"] = USER
        return {"user": USER}

    @app.post("/counter")
    async def increment(request: Request) -> dict[str, int]:
        if "user" not in request.session:
            raise HTTPException(401)
        request.session["counter"] = request.session.get("counter", 0) + 1
        return {"counter": request.session["counter"]}

    @app.get("/me")
    async def me(request: Request) -> dict[str, str]:
        if "user" not in request.session:
            raise HTTPException(401)
        return {"user": request.session["user"]}

    return app


def _starlette(_: str) -> FastAPI:
    from starlette.middleware.sessions import SessionMiddleware

    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=secrets.token_urlsafe(32), https_only=False)
    return _mapping_routes(app)


def _starsessions(redis_url: str) -> FastAPI:
    from starsessions import SessionAutoloadMiddleware, SessionMiddleware
    from starsessions.stores.redis import RedisStore

    app = FastAPI()
    app.add_middleware(SessionAutoloadMiddleware)
    app.add_middleware(
        SessionMiddleware,
        store=RedisStore(redis_url),
        lifetime=1800,
        rolling=True,
        cookie_https_only=False,
    )
    return _mapping_routes(app)


def _ours(redis_url: str) -> FastAPI:
    from redis.asyncio import Redis

    from app.sessions import (
        CookiePolicy,
        Limits,
        MemorySessionStore,
        RedisSessionStore,
        Session,
        SessionConfig,
        SessionManager,
        SessionMiddleware,
    )

    limits = Limits(idle_ms=1_800_000, lifetime_ms=43_200_000, max_bytes=16384)
    store: Any = (
        RedisSessionStore(
            Redis.from_url(redis_url), limits, wait_replicas=0, wait_timeout_ms=1000, deadline=3.0
        )
        if redis_url
        else MemorySessionStore(limits)
    )
    manager = SessionManager(store, CookiePolicy(secure=False), SessionConfig(lifetime_s=43200))
    app = FastAPI()
    app.add_middleware(SessionMiddleware, manager=manager, store_deadline=3.0, retry_after=2)

    async def session_of(request: Request) -> Session:
        session: Session = request.scope["session"]
        return await session.load()

    @app.post("/login")
    async def login(request: Request) -> dict[str, str]:
        user = (await request.json())["username"]  # one user per session: no per-user cap hit
        session = await session_of(request)
        session.log_in(user)
        await session.save()
        return {"user": user}

    @app.post("/counter")
    async def increment(request: Request) -> dict[str, int]:
        session = await session_of(request)
        if session.user_id is None:
            raise HTTPException(401)
        session.apply("counter", lambda n: (n or 0) + 1)
        await session.save()
        return {"counter": session["counter"]}

    @app.get("/me")
    async def me(request: Request) -> dict[str, str]:
        session = await session_of(request)
        if session.user_id is None:
            raise HTTPException(401)
        return {"user": session.user_id}

    return app


def _ours_app(redis_url: str) -> Any:
    from app.main import create_app
    from app.settings import Settings

    # As the chart runs it: behind Sentinel, commits acknowledged by the replica and checked
    # against the Sentinels' census (the harness starts a master, a replica and a Sentinel),
    # metrics on a port of their own; everything else at its production default.
    sentinels = os.environ.get("BENCH_SENTINELS")
    return create_app(
        Settings(
            redis_url=None if sentinels else redis_url,
            redis_sentinels=sentinels,
            metrics_port=9090,
            cookie_secure=False,
            loadtest_users=10_000,
            loadtest_password=os.environ["BENCH_PASSWORD"],
            log_level="WARNING",
        )
    )


BUILDERS = {
    "none": _none,
    "starlette": _starlette,
    "starsessions": _starsessions,
    "ours-memory": lambda _: _ours(""),
    "ours-redis": _ours,
    "ours-app": _ours_app,
}
