"""A store that says no answers fast; readiness counts what traffic saw."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.processes import RedisServer, free_port
from tests.conftest import LOAD_PASSWORD, login

pytestmark = pytest.mark.redis

# Well under a second, against a deadline (3 s) meant for a store that stays silent.
FAST = 0.6


async def test_refused_connections_answer_503_well_before_the_deadline(
    settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = await client_for(settings_for("memory", redis_url=closed, store_deadline=3.0))
    client.cookies.set("__Host-sid", "A" * 43, domain=client.base_url.host)  # a session to load
    for method, path, body in (
        ("GET", "/me", None),
        ("POST", "/counter", None),
        ("POST", "/login", {"username": "user-0001", "password": LOAD_PASSWORD}),
    ):
        started = time.monotonic()
        response = await client.request(method, path, json=body)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, (path, response.text)
        assert response.headers["retry-after"] == "2"
        assert elapsed < FAST, (path, elapsed)


async def test_a_killed_store_answers_503_fast(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    try:
        client = await client_for(settings_for("memory", redis_url=server.url, store_deadline=3.0))
        await login(client)
        server.proc.signal(signal.SIGKILL)
        server.proc.popen.wait(5)
        started = time.monotonic()
        response = await client.get("/me")
        assert response.status_code == 503
        assert time.monotonic() - started < FAST
    finally:
        server.stop()


async def test_a_silent_store_still_gets_the_whole_deadline(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], tmp_path: Path
) -> None:
    """Silence may be a failover about to end: it is waited out, up to the deadline."""
    server = RedisServer(tmp_path)
    try:
        client = await client_for(settings_for("memory", redis_url=server.url, store_deadline=1.5))
        await login(client)
        server.proc.signal(signal.SIGSTOP)
        started = time.monotonic()
        response = await client.get("/me")
        assert response.status_code == 503
        assert 1.2 < time.monotonic() - started < 2.5
    finally:
        server.stop()


async def test_readiness_counts_recent_traffic(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], tmp_path: Path
) -> None:
    server = RedisServer(tmp_path)
    try:
        client = await client_for(
            settings_for("memory", redis_url=server.url, readiness_grace=30.0)
        )
        await login(client)  # traffic reached the store; /readyz was never asked
        server.proc.signal(signal.SIGKILL)
        server.proc.popen.wait(5)
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["store"] == "unavailable"
    finally:
        server.stop()


@pytest.mark.parametrize("grace", [30.0])
async def test_readiness_without_any_success_is_not_ready(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], grace: float
) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    client = await client_for(settings_for("memory", redis_url=closed, readiness_grace=grace))
    response = await client.get("/readyz")
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
