"""Login throttling: who the client is behind proxies, backoff instead of a wall, devices."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from app.auth.throttle import Backoff
from tests.conftest import LOAD_PASSWORD, sibling

PROXY = ("10.1.2.3", 4000)


async def _attempt(
    client: httpx.AsyncClient, user: str, password: str = "wrong", forwarded: str | None = None
) -> httpx.Response:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return await client.post(
        "/login", json={"username": user, "password": password}, headers=headers
    )


def test_backoff_doubles_after_the_free_failures_up_to_its_cap() -> None:
    backoff = Backoff(free=3, first_ms=1000, max_ms=5000)
    locks = [backoff.lock_ms(n) for n in range(1, 8)]
    assert locks == [0, 0, 1000, 2000, 4000, 5000, 5000]


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(
        settings_for(store_kind, login_max_failures_per_client=3, trusted_proxies="10.0.0.0/8"),
        peer=("198.51.100.7", 5555),
    )
    for i in range(3):  # a fresh made-up address each time, as a guesser would send
        response = await _attempt(client, f"user-00{10 + i}", forwarded=f"192.0.2.{i}")
        assert response.status_code == 401
    blocked = await _attempt(client, "user-0015", LOAD_PASSWORD, forwarded="192.0.2.99")
    assert blocked.status_code == 429


async def test_the_client_is_the_address_our_proxy_added(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    proxy = await client_for(
        settings_for(store_kind, login_max_failures_per_client=3, trusted_proxies="10.0.0.0/8"),
        peer=PROXY,
    )
    for i in range(3):  # the left part is the client's own claim: ignored
        response = await _attempt(proxy, f"user-00{10 + i}", forwarded=f"6.6.6.{i}, 203.0.113.5")
        assert response.status_code == 401
    same_client = await _attempt(proxy, "user-0015", LOAD_PASSWORD, forwarded="203.0.113.5")
    assert same_client.status_code == 429
    neighbour = await _attempt(
        sibling(proxy), "user-0016", LOAD_PASSWORD, forwarded="203.0.113.5, 203.0.113.6"
    )
    assert neighbour.status_code == 200  # another client behind the same proxy is not locked


async def test_a_lock_ends_and_the_right_password_then_works(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(
        settings_for(
            store_kind, login_max_failures_per_user=2, login_backoff_first=0.3, login_backoff_max=1
        )
    )
    assert [(await _attempt(client, "user-0003")).status_code for _ in range(2)] == [401, 401]
    locked = await _attempt(client, "user-0003", LOAD_PASSWORD)
    assert locked.status_code == 429 and locked.headers["retry-after"] == "1"
    await asyncio.sleep(0.35)  # the lock's length is the behaviour under test
    assert (await _attempt(client, "user-0003", LOAD_PASSWORD)).status_code == 200


async def test_a_known_device_is_not_locked_out_by_someone_else(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    owner = await client_for(settings_for(store_kind), peer=("192.0.2.10", 1))
    assert (await _attempt(owner, "user-0007", LOAD_PASSWORD)).status_code == 200
    attacker = sibling(owner, ("198.51.100.66", 2))
    statuses = [(await _attempt(attacker, "user-0007")).status_code for _ in range(8)]
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}

    assert (await _attempt(owner, "user-0007", LOAD_PASSWORD)).status_code == 200
    new_browser = sibling(owner)
    assert (await _attempt(new_browser, "user-0007", LOAD_PASSWORD)).status_code == 429


async def test_guessing_from_a_known_device_is_locked_too(
    store_kind: str, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    device = await client_for(settings_for(store_kind))
    assert (await _attempt(device, "user-0008", LOAD_PASSWORD)).status_code == 200
    statuses = [(await _attempt(device, "user-0008")).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


@pytest.mark.parametrize("secure", [True, False])
async def test_device_cookie_is_hardened(
    secure: bool, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    base = "https://sf.test" if secure else "http://sf.test"
    client = await client_for(settings_for("memory", cookie_secure=secure), base)
    response = await _attempt(client, "user-0001", LOAD_PASSWORD)
    device = next(h for h in response.headers.get_list("set-cookie") if "sfdev" in h)
    assert device.startswith("__Host-sfdev=" if secure else "sfdev=")
    assert "HttpOnly" in device and "SameSite=strict" in device and "Path=/" in device
    assert ("Secure" in device) is secure
