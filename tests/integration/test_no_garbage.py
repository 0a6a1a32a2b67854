"""The per-request path leaves no reference cycles behind.

Objects in a cycle are freed only by the garbage collector, which a serving app runs rarely
(app/ops/gc_tuning.py): cycles left by every request would pile up between its passes and make
each pass long.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.ops.gc_tuning import YOUNG_THRESHOLD
from app.sessions import CookiePolicy, SessionConfig, SessionManager, SessionStore
from app.sessions.deadline import request_budget
from app.settings import Settings
from tests.integration.test_store_contract import LIMITS, _make


@pytest.fixture
def cycles_kept() -> Iterator[list[object]]:
    """What the collector finds unreachable from the test body on (kept, not freed)."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield gc.garbage
    finally:
        gc.set_debug(0)
        gc.garbage.clear()


async def test_loads_and_commits_leave_no_cycles(
    store_kind: str, request: pytest.FixtureRequest
) -> None:
    store: SessionStore = await _make(store_kind, request, LIMITS)
    manager = SessionManager(store, CookiePolicy(secure=False), SessionConfig(lifetime_s=600))
    first = await manager.new_session(None).load()
    first["@user"] = "user-0001"
    first.rotate()
    await manager.save(first)

    async def one_request() -> None:
        with request_budget(2.0):
            session = await manager.new_session(first.id).load()
            session.apply("counter", lambda n: (n or 0) + 1)
            await manager.save(session)

    await asyncio.gather(*(one_request() for _ in range(20)))  # warm: scripts loaded, connected
    garbage = request.getfixturevalue("cycles_kept")
    await asyncio.gather(*(one_request() for _ in range(50)))
    gc.collect()
    assert [type(o).__name__ for o in garbage[:10]] == []
    again = await manager.new_session(first.id).load()
    assert again["counter"] == 70
    await store.close()


async def test_a_serving_app_keeps_its_startup_heap_out_of_the_collectors_way(
    settings_for: Callable[..., Settings], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for("memory"))
    assert (await client.get("/healthz")).status_code == 200
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 10_000  # modules, the app and its routes
