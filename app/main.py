"""The application factory: wires settings, store, middleware, routes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from pydantic import SecretStr
from starlette.routing import Route
from starlette.types import ASGIApp
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .api import auth, cart, counter, health, sessions
from .api.auth import DeviceCookie
from .api.deps import Services
from .api.openapi import document_session_cookie
from .api.order_book import MemoryOrderBook, OrderBook, RedisOrderBook
from .auth.throttle import (
    Backoff,
    LoginThrottle,
    MemoryThrottleStore,
    RedisThrottleStore,
    ThrottleStore,
)
from .auth.users import UserDirectory
from .http.api_docs import add_api_docs
from .http.edge import Edge
from .ops.gc_tuning import restore, tune_for_serving
from .ops.logging_setup import configure_logging
from .ops.metrics import PrometheusObserver, metrics_endpoint
from .ops.readiness import StoreHealth
from .ops.telemetry import EXCLUDED_URLS, setup_tracing
from .sessions import (
    CookiePolicy,
    Limits,
    MemorySessionStore,
    RedisOptions,
    RedisSessionStore,
    SessionConfig,
    SessionError,
    SessionManager,
    SessionMiddleware,
    SessionObserver,
    SessionStore,
    connect,
    error_response,
)
from .settings import Settings

log = logging.getLogger("sessionfleet")
MAX_BODY_BYTES = 64 * 1024
LOOKUP_THREADS = 64


@dataclass(frozen=True, slots=True)
class Backends:
    """Where the app keeps its state, and what must be closed on shutdown (in order)."""

    store: SessionStore
    throttle: ThrottleStore
    orders: OrderBook
    closers: list[Callable[[], Awaitable[None]]]


def make_backends(settings: Settings, observer: SessionObserver) -> Backends:
    """The session store, login-failure counters and order book the settings ask for (no I/O
    yet)."""
    limits = Limits(
        idle_ms=settings.session_idle_timeout * 1000,
        lifetime_ms=settings.session_absolute_lifetime * 1000,
        max_bytes=settings.session_max_bytes,
    )
    # A checkout's idempotency record lives in a session: its order must outlive it.
    retention = settings.session_absolute_lifetime
    if not settings.uses_redis:
        log.warning(
            "NO REDIS CONFIGURED: sessions live in this process only. Do not run more than "
            "one worker or replica like this; set SESSIONFLEET_REDIS_URL or "
            "SESSIONFLEET_REDIS_SENTINELS or SESSIONFLEET_REDIS_CLUSTER_NODES."
        )
        return Backends(
            MemorySessionStore(limits), MemoryThrottleStore(), MemoryOrderBook(retention), []
        )
    redis = connect(redis_options(settings))
    # One pipelined connection for the sessions, the login throttle and the order book.
    store = RedisSessionStore(
        redis,
        limits,
        wait_replicas=settings.wait_replicas,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
        deadline=settings.store_deadline,
        observer=observer,
    )
    orders = RedisOrderBook(
        redis,
        retention_s=retention,
        wait_replicas=settings.wait_replicas,
        wait_timeout_ms=settings.redis_wait_timeout_ms,
        deadline=settings.store_deadline,
    )
    throttle = RedisThrottleStore(redis, settings.store_deadline)
    return Backends(store, throttle, orders, [store.close, redis.close])


def redis_options(settings: Settings) -> RedisOptions:
    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    return RedisOptions(
        url=settings.redis_url,
        sentinels=settings.sentinel_addresses,
        cluster_nodes=settings.cluster_addresses,
        master_name=settings.redis_master_name,
        username=settings.redis_username,
        password=secret(settings.redis_password),
        sentinel_password=secret(settings.sentinel_password),
        tls=settings.redis_tls,
        tls_ca_file=settings.redis_tls_ca_file,
        socket_timeout=settings.redis_socket_timeout,
        connect_timeout=settings.redis_connect_timeout,
        max_connections=settings.redis_max_connections,
    )


def _backoff(settings: Settings, free_failures: int) -> Backoff:
    return Backoff(
        free_failures,
        int(settings.login_backoff_first * 1000),
        int(settings.login_backoff_max * 1000),
    )


class SessionfleetApp(FastAPI):
    edge: dict[str, Any] = {}  # noqa: RUF012 (Edge's settings, set per instance by create_app)
    trusted_proxies: list[str] = []  # noqa: RUF012 (likewise)

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if self.trusted_proxies:
            # The client address (login throttling) from X-Forwarded-For, believed only from
            # our own proxies: uvicorn's parser, applied here so every server behaves alike.
            # (uvicorn types ASGI apps more narrowly than Starlette: same protocol)
            stack = ProxyHeadersMiddleware(stack, self.trusted_proxies)  # type: ignore[arg-type,assignment]
        # Outside Starlette's ServerErrorMiddleware: even an unexpected 500 says who served it
        # and is counted.
        return Edge(stack, **self.edge)


async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own handler echoes the offending input and fails (a 500) on bytes that are
    # not UTF-8, such as a body of the wrong content type: echo those lossily.
    assert isinstance(exc, RequestValidationError)
    errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: _lossy_text})
    return JSONResponse({"detail": errors}, status_code=422)


def _lossy_text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


async def internal_error(_: Request, exc: Exception) -> JSONResponse:
    # The traceback goes to the log (the server logs the re-raised exception), not the client.
    return JSONResponse({"detail": "internal error"}, status_code=500)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_format, settings.log_level, settings.replica_name)
    tracer_provider = setup_tracing(settings)
    observer = PrometheusObserver()
    backends = make_backends(settings, observer)
    store = backends.store
    manager = SessionManager(
        store,
        CookiePolicy(name=settings.cookie_name, secure=settings.cookie_secure),
        SessionConfig(
            lifetime_s=settings.session_absolute_lifetime,
            max_sessions_per_user=settings.max_sessions_per_user,
            durable_writes=settings.redis_wait_all_writes,
        ),
        observer,
    )
    password = settings.loadtest_password
    services = Services(
        manager=manager,
        users=UserDirectory.from_file(
            settings.users_file,
            loadtest_users=settings.loadtest_users,
            loadtest_password=password.get_secret_value() if password else None,
            concurrent_checks=settings.password_checks_per_worker,
        ),
        throttle=LoginThrottle(
            backends.throttle,
            per_user=_backoff(settings, settings.login_max_failures_per_user),
            per_client=_backoff(settings, settings.login_max_failures_per_client),
            window_s=settings.login_failure_window,
            device_days=settings.login_known_device_days,
        ),
        orders=backends.orders,
    )
    state: dict[str, Any] = {
        "services": services,
        "device_cookie": DeviceCookie(settings.cookie_secure, settings.login_known_device_days),
        "store_health": StoreHealth(
            store, grace=settings.readiness_grace, probe_timeout=settings.store_deadline
        ),
        "retry_after": settings.retry_after,
    }

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        # Name lookups run on the loop's default executor (a handful of threads). When a node
        # vanishes its name can take seconds to fail, and a burst of such lookups must not
        # leave none for the healthy nodes' names.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=LOOKUP_THREADS, thread_name_prefix="sessionfleet-io")
        )
        gc_thresholds = tune_for_serving()
        try:
            yield state
        finally:
            restore(gc_thresholds)
            for close in backends.closers:
                await close()

    # FastAPI's /docs and /redoc load their assets from CDNs: ours are served from the package,
    # and only when asked for.
    app = SessionfleetApp(title="sessionfleet", lifespan=lifespan, docs_url=None, redoc_url=None)
    if settings.api_docs:
        add_api_docs(app)
    app.trusted_proxies = _split(settings.trusted_proxies)
    app.add_exception_handler(Exception, internal_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    for module in (auth, cart, counter, sessions, health):
        # The routes themselves, not the router: an included router is one more level every
        # request's route lookup walks through.
        app.router.routes.extend(module.router.routes)
    document_session_cookie(app, manager.cookies.cookie_name)
    metrics = metrics_endpoint(store.count)
    app.edge = {
        "replica": settings.replica_name,
        "max_body_bytes": MAX_BODY_BYTES,
        "trusted_origins": frozenset(_split(settings.trusted_origins)),
        "metrics": Route("/metrics", metrics) if settings.metrics_port else None,
        "metrics_port": settings.metrics_port,
    }
    if not settings.metrics_port:
        app.add_route("/metrics", metrics, include_in_schema=False)

    @app.exception_handler(SessionError)
    async def session_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, SessionError)
        return error_response(exc, settings.retry_after)

    # Inside the edge (see SessionfleetApp): tracing, then sessions.
    app.add_middleware(
        SessionMiddleware,
        manager=manager,
        store_deadline=settings.store_deadline,
        retry_after=settings.retry_after,
    )
    if tracer_provider is not None:
        # Outermost: the server span covers everything, session spans nest inside it.
        app.add_middleware(
            OpenTelemetryMiddleware, tracer_provider=tracer_provider, excluded_urls=EXCLUDED_URLS
        )
    return app


def _split(items: str) -> list[str]:
    return [item.strip() for item in items.split(",") if item.strip()]


@functools.cache
def _default_app() -> FastAPI:
    return create_app()


def __getattr__(name: str) -> Any:
    # `app.main:app` for servers, built on first access so importing this module does no work.
    if name == "app":
        return _default_app()
    raise AttributeError(name)
