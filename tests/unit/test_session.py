from __future__ import annotations

import pytest

from app.sessions import CookiePolicy, Limits, MemorySessionStore, SessionConfig, SessionManager
from app.sessions.errors import SessionConflict, SessionNotLoaded


@pytest.fixture
def manager() -> SessionManager:
    store = MemorySessionStore(Limits(idle_ms=60_000, lifetime_ms=600_000, max_bytes=4096))
    return SessionManager(store, CookiePolicy(), SessionConfig(lifetime_s=600))


async def test_data_needs_load_first(manager: SessionManager) -> None:
    session = manager.new_session(None)
    with pytest.raises(SessionNotLoaded):
        session["a"] = 1
    with pytest.raises(SessionNotLoaded):
        _ = session.get("a")


async def test_untouched_session_is_not_dirty_and_not_saved(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    await session.save()
    assert not session.exists and session.cookie is None and session.id is None


async def test_first_write_creates_session_with_new_id(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    session["a"] = 1
    await session.save()
    assert session.exists and session.cookie == "set" and session.id
    reloaded = await manager.new_session(session.id).load()
    assert dict(reloaded) == {"a": 1}


async def test_only_changed_keys_are_committed(manager: SessionManager) -> None:
    first = await manager.new_session(None).load()
    first.update({"a": 1, "b": 1})
    await first.save()
    one = await manager.new_session(first.id).load()
    two = await manager.new_session(first.id).load()
    one["a"] = 2
    two["b"] = 2
    await one.save()
    await two.save()
    assert dict(await manager.new_session(first.id).load()) == {"a": 2, "b": 2}


async def test_same_key_plain_set_conflicts(manager: SessionManager) -> None:
    first = await manager.new_session(None).load()
    first["a"] = 1
    await first.save()
    one = await manager.new_session(first.id).load()
    two = await manager.new_session(first.id).load()
    one["a"] = 2
    two["a"] = 3
    await one.save()
    with pytest.raises(SessionConflict) as caught:
        await two.save()
    assert caught.value.keys == ["a"]


async def test_apply_is_reapplied_on_conflict(manager: SessionManager) -> None:
    first = await manager.new_session(None).load()
    first["n"] = 0
    await first.save()
    one = await manager.new_session(first.id).load()
    two = await manager.new_session(first.id).load()
    one.apply("n", lambda v: v + 1)
    two.apply("n", lambda v: v + 10)
    await one.save()
    await two.save()
    assert two["n"] == 11
    assert (await manager.new_session(first.id).load())["n"] == 11


async def test_rotate_moves_data_and_kills_old_id(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    session["cart"] = ["x"]
    await session.save()
    old = session.id
    session.rotate()
    await session.save()
    assert session.id != old and session.cookie == "set"
    assert dict(await manager.new_session(session.id).load()) == {"cart": ["x"]}
    assert not (await manager.new_session(old).load()).exists


async def test_invalidate_clears_and_expires_cookie(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    session["a"] = 1
    await session.save()
    sid = session.id
    session.invalidate()
    await session.save()
    assert session.cookie == "clear" and len(session) == 0
    assert not (await manager.new_session(sid).load()).exists


@pytest.mark.parametrize("key", ["", "#v", "a b", "x" * 65, "ключ"])
async def test_invalid_keys_are_refused(manager: SessionManager, key: str) -> None:
    session = await manager.new_session(None).load()
    with pytest.raises(ValueError, match="invalid session key"):
        session[key] = 1


async def test_unserialisable_value_fails_at_save(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    session["a"] = object()
    with pytest.raises(TypeError):
        await session.save()


async def test_anonymous_data_carries_into_a_login(manager: SessionManager) -> None:
    session = await manager.new_session(None).load()
    session["theme"] = "dark"
    await session.save()
    session.log_in("alice")
    await session.save()
    assert dict(await manager.new_session(session.id).load()) == {"theme": "dark", "@user": "alice"}


async def test_login_as_another_user_drops_the_data_and_the_old_session(
    manager: SessionManager,
) -> None:
    session = await manager.new_session(None).load()
    session.log_in("alice")
    session["cart"] = {"a": 1}
    await session.save()
    alice_id = session.id
    session.log_in("bob")
    await session.save()
    assert dict(await manager.new_session(session.id).load()) == {"@user": "bob"}
    assert not (await manager.new_session(alice_id).load()).exists
    assert await manager.list_user_sessions("alice") == []
