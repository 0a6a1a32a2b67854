"""The same contract, run against the in-memory store, a real redis-server and a real Redis
Cluster (3 shards: one session's keys in one slot, a user's index in another)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.sessions import (
    CommitRequest,
    Limits,
    MemorySessionStore,
    RedisOptions,
    RedisSessionStore,
    SessionEnded,
    SessionStore,
    SessionTooLarge,
    connect,
)
from harness.processes import RedisServer
from harness.redis_cluster import RedisCluster

LIMITS = Limits(idle_ms=60_000, lifetime_ms=3_600_000, max_bytes=2048)


@pytest.fixture(params=["memory", "redis", "redis_cluster"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store(store_kind: str, request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    yield await _make(store_kind, request, LIMITS)


async def _make(kind: str, request: pytest.FixtureRequest, limits: Limits) -> SessionStore:
    if kind == "memory":
        return MemorySessionStore(limits)
    from redis.asyncio import Redis

    if kind == "redis_cluster":
        cluster: RedisCluster = request.getfixturevalue("cluster_db")
        connection = connect(RedisOptions(cluster_nodes=[cluster.nodes[0].address]))
        return RedisSessionStore(
            connection, limits, wait_replicas=1, wait_timeout_ms=500, deadline=2.0
        )
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client.flushall()
    return RedisSessionStore(
        Redis.from_url(server.url), limits, wait_replicas=0, wait_timeout_ms=100, deadline=1.0
    )


def create(token: str = "t0", **sets: bytes) -> CommitRequest:
    return CommitRequest(token, create=True, sets={k: (0, v) for k, v in sets.items()})


def update(
    token: str, sets: dict[str, tuple[int, bytes]], deletes: dict[str, int] | None = None
) -> CommitRequest:
    return CommitRequest(token, create=False, sets=sets, deletes=deletes or {})


async def test_created_session_loads_with_versions(store: SessionStore) -> None:
    result = await store.commit("k1", create(a=b"1", b=b'"x"'))
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.fields == {"a": (result.version, b"1"), "b": (result.version, b'"x"')}
    assert loaded.expires_at_ms - loaded.created_ms == LIMITS.lifetime_ms


async def test_missing_session_loads_as_none(store: SessionStore) -> None:
    assert await store.load("nope") is None


async def test_changes_to_different_keys_both_persist(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1", b=b"1"))).version
    first = await store.commit("k1", update("t1", {"a": (v1, b"2")}))
    second = await store.commit("k1", update("t2", {"b": (v1, b"3")}))  # based on the old load
    assert first.ok and second.ok
    loaded = await store.load("k1")
    assert loaded is not None
    assert {k: v for k, (_, v) in loaded.fields.items()} == {"a": b"2", "b": b"3"}


async def test_same_key_changed_concurrently_conflicts_and_writes_nothing(
    store: SessionStore,
) -> None:
    v1 = (await store.commit("k1", create(a=b"1", b=b"1"))).version
    winner = await store.commit("k1", update("t1", {"a": (v1, b"2")}))
    loser = await store.commit("k1", update("t2", {"a": (v1, b"9"), "b": (v1, b"9")}))
    assert not loser.ok
    assert loser.conflicts == {"a": (winner.version, b"2")}
    loaded = await store.load("k1")
    assert loaded is not None
    assert loaded.fields["b"] == (v1, b"1")  # the non-conflicting half was not written either


async def test_adding_a_key_someone_else_added_conflicts(store: SessionStore) -> None:
    await store.commit("k1", create(a=b"1"))
    assert (await store.commit("k1", update("t1", {"new": (0, b"1")}))).ok
    loser = await store.commit("k1", update("t2", {"new": (0, b"2")}))
    assert set(loser.conflicts) == {"new"}


async def test_delete_checks_version(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1"))).version
    await store.commit("k1", update("t1", {"a": (v1, b"2")}))
    stale_delete = await store.commit("k1", update("t2", {}, {"a": v1}))
    assert set(stale_delete.conflicts) == {"a"}


async def test_delete_removes_key(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1", b=b"2"))).version
    assert (await store.commit("k1", update("t1", {}, {"a": v1}))).ok
    loaded = await store.load("k1")
    assert loaded is not None and set(loaded.fields) == {"b"}


async def test_retried_commit_is_applied_once(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1"))).version
    request = update("same-token", {"a": (v1, b"2")})
    first = await store.commit("k1", request)
    again = await store.commit("k1", request)  # as after a dropped connection
    assert again.ok and again.version == first.version


async def test_retried_commit_is_applied_once_after_another_commit(store: SessionStore) -> None:
    # Two tabs: A is applied, then B; A's answer is lost and A is retried with A's versions.
    v1 = (await store.commit("k1", create(a=b"1", b=b"1"))).version
    tab_a = update("token-a", {"a": (v1, b"2")})
    applied_a = await store.commit("k1", tab_a)
    applied_b = await store.commit("k1", update("token-b", {"b": (v1, b"2")}))
    retried_a = await store.commit("k1", tab_a)
    assert retried_a.ok and retried_a.version == applied_a.version != applied_b.version
    loaded = await store.load("k1")
    assert loaded is not None and loaded.fields["a"] == (applied_a.version, b"2")


async def test_update_of_deleted_session_ends_it(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1"))).version
    await store.delete(["k1"])
    with pytest.raises(SessionEnded):
        await store.commit("k1", update("t1", {"a": (v1, b"2")}))
    assert await store.load("k1") is None  # not resurrected


async def test_create_over_existing_session_is_refused(store: SessionStore) -> None:
    await store.commit("k1", create(a=b"1"))
    with pytest.raises(SessionEnded):
        await store.commit("k1", create("t-other", a=b"2"))


async def test_over_budget_commit_writes_nothing(store: SessionStore) -> None:
    v1 = (await store.commit("k1", create(a=b"1"))).version
    with pytest.raises(SessionTooLarge):
        await store.commit("k1", update("t1", {"a": (v1, b"2"), "big": (0, b"x" * 3000)}))
    loaded = await store.load("k1")
    assert loaded is not None and loaded.fields == {"a": (v1, b"1")}


async def test_budget_counts_replacements_not_history(store: SessionStore) -> None:
    version = (await store.commit("k1", create(a=b"x" * 1500))).version
    for i in range(5):  # each rewrite replaces the 1.5 KB value, never adds to it
        result = await store.commit("k1", update(f"t{i}", {"a": (version, b"y" * 1500)}))
        assert result.ok
        version = result.version


async def test_over_budget_create_writes_nothing(store: SessionStore) -> None:
    with pytest.raises(SessionTooLarge):
        await store.commit("k1", create(big=b"x" * 3000))
    assert await store.load("k1") is None


@pytest.mark.parametrize("limit", ["idle", "absolute"])
async def test_expired_session_is_gone(
    store_kind: str, request: pytest.FixtureRequest, limit: str
) -> None:
    import asyncio

    limits = (
        Limits(idle_ms=150, lifetime_ms=60_000, max_bytes=2048)
        if limit == "idle"
        else Limits(idle_ms=60_000, lifetime_ms=150, max_bytes=2048)
    )
    store = await _make(store_kind, request, limits)
    await store.commit("k1", create(a=b"1"))
    assert await store.load("k1") is not None
    await asyncio.sleep(0.3)
    assert await store.load("k1") is None


async def test_loading_slides_idle_expiry(store_kind: str, request: pytest.FixtureRequest) -> None:
    import asyncio

    store = await _make(
        store_kind, request, Limits(idle_ms=400, lifetime_ms=60_000, max_bytes=2048)
    )
    await store.commit("k1", create(a=b"1"))
    for _ in range(4):  # 4 x 0.2 s > 0.4 s idle timeout, but each load slides it
        await asyncio.sleep(0.2)
        assert await store.load("k1") is not None


async def test_index_lists_live_sessions_and_prunes_ended(store: SessionStore) -> None:
    for key in ("k1", "k2", "k3"):
        await store.commit(key, create(a=b"1"))
        await store.index_add("alice", key, 10**13, cap=10)
    await store.delete(["k2"])  # ended without the index being told
    listed = [info.key for info in await store.index_list("alice")]
    assert sorted(listed) == ["k1", "k3"]
    await store.index_remove("alice", ["k1"])
    assert [info.key for info in await store.index_list("alice")] == ["k3"]


async def test_index_cap_signs_out_oldest(store: SessionStore) -> None:
    for i, key in enumerate(("k1", "k2", "k3")):
        await store.commit(key, create(a=b"1"))
        await store.index_add("alice", key, 10**13 + i, cap=2)
    assert sorted(info.key for info in await store.index_list("alice")) == ["k2", "k3"]
    assert await store.load("k1") is None
