"""A commit is acknowledged only once enough replicas hold it, by the master Sentinel names."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.asyncio import Redis

from app.sessions import (
    CommitRequest,
    Limits,
    NotDurable,
    RedisOptions,
    RedisSessionStore,
    ReplicaCensus,
    StoreUnavailable,
    connect,
)
from app.sessions.census import MAX_AGE
from app.sessions.census import Census as CensusQuery
from harness.processes import RedisServer, ReplicatedRedis, free_port, wait_until

pytestmark = pytest.mark.redis


@pytest.mark.parametrize("wait_all_writes", [True, False])
async def test_login_without_replica_ack_is_503_not_ok(
    settings_for: Callable[..., Any], client_for: Callable[..., Any], wait_all_writes: bool
) -> None:
    # A standalone Redis has no replica: WAIT 1 can never be satisfied.
    settings = settings_for(
        "redis",
        redis_wait_replicas=1,
        redis_wait_timeout_ms=100,
        redis_wait_all_writes=wait_all_writes,
        store_deadline=1.0,
    )
    client = await client_for(settings)
    started = time.monotonic()
    response = await client.post(
        "/login", json={"username": "user-0001", "password": "correct horse battery staple"}
    )
    assert response.status_code == 503
    assert response.headers["retry-after"] == "2"
    assert "set-cookie" not in response.headers  # the client learns no session ID
    assert time.monotonic() - started < 1.6
    assert "replicas" in response.json()["detail"]


def _store(
    port: int,
    *,
    census: CensusQuery | None = None,
    wait_replicas: int = 1,
    wait_timeout_ms: int = 50,
    deadline: float = 0.3,
) -> RedisSessionStore:
    """A store on the Redis at `port` (short WAIT and deadline unless told otherwise)."""
    return RedisSessionStore(
        Redis(port=port),
        Limits(idle_ms=60_000, lifetime_ms=600_000, max_bytes=4096),
        wait_replicas=wait_replicas,
        wait_timeout_ms=wait_timeout_ms,
        deadline=deadline,
        census=census,
    )


def _store_on(
    redis_db: redis.Redis, *, wait_replicas: int, census: CensusQuery | None = None
) -> RedisSessionStore:
    """A store on the test's standalone Redis, with a short WAIT and deadline."""
    port = redis_db.connection_pool.connection_kwargs["port"]
    return _store(port, census=census, wait_replicas=wait_replicas)


async def test_a_logout_no_replica_acknowledged_is_not_reported_done(
    redis_db: redis.Redis,
) -> None:
    # A DEL a failover lost would bring a logged-out session back to whoever holds its
    # cookie: ending a session is acknowledged by replicas like writing one.
    store = _store_on(redis_db, wait_replicas=1)  # a standalone Redis: WAIT 1 never answered
    await store.commit("k1", CommitRequest("t1", create=True, sets={"a": (0, b"1")}, durable=False))
    with pytest.raises(NotDurable):
        await store.delete(["k1"])
    await store.close()


async def test_no_census_means_no_commit_not_the_minimum(redis_db: redis.Redis) -> None:
    # Sentinels that do not answer are what a loaded fleet mid-failover looks like: falling
    # back to WAIT 1 there let a replica about to be resynchronised acknowledge writes.
    async def no_sentinel_answers() -> ReplicaCensus | None:
        return None

    store = _store_on(redis_db, wait_replicas=1, census=no_sentinel_answers)
    request = CommitRequest("t1", create=True, sets={"a": (0, b"1")}, durable=True)
    with pytest.raises(NotDurable, match="no majority of Sentinels answered"):
        await store.commit("k1", request)
    assert redis_db.keys("*") == []  # not even sent: the master holds nothing unacknowledged
    await store.close()


async def test_no_census_means_no_connection_even_for_a_load(redis_db: redis.Redis) -> None:
    # Where the master is, is the census' answer, for every command: with no majority the
    # store does not fall back to the address its client was configured with.
    async def no_sentinel_answers() -> ReplicaCensus | None:
        return None

    before = max(int(c["id"]) for c in redis_db.client_list())
    store = _store_on(redis_db, wait_replicas=0, census=no_sentinel_answers)
    with pytest.raises(StoreUnavailable):
        await store.load("a" * 32)
    assert [c for c in redis_db.client_list() if int(c["id"]) > before] == []
    await store.close()


async def test_a_silent_sentinel_costs_a_commit_its_deadline_not_more(
    redis_db: redis.Redis,
) -> None:
    # No timer wraps a durable commit's attempt: its census queries end at the deadline.
    silence = asyncio.Event()

    async def silent_sentinels() -> ReplicaCensus | None:
        await silence.wait()
        return None

    store = _store_on(redis_db, wait_replicas=1, census=silent_sentinels)  # deadline 0.3 s
    started = time.monotonic()
    with pytest.raises(NotDurable):
        await store.commit("k1", CommitRequest("t1", create=True, sets={"a": (0, b"1")}))
    assert time.monotonic() - started < 0.5
    silence.set()  # let the shared query finish before the loop closes
    await store.close()


class Census:
    """What the Sentinels say: the master the test names, one replica, all well."""

    def __init__(self, master: RedisServer) -> None:
        self.master = ("127.0.0.1", master.port)

    async def __call__(self) -> ReplicaCensus:
        return ReplicaCensus(self.master, replicas=1, failing_over=False)


@pytest.fixture
def old_and_new(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    """A master and its replica, in sync: the replica is the one a failover promotes."""
    fast_sync = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")
    old = RedisServer(tmp_path / "a", None, *fast_sync)
    new = RedisServer(tmp_path / "b", None, *fast_sync)
    try:
        new.client.replicaof("127.0.0.1", old.port)
        wait_until(lambda: _linked(new), 10, "replica of the first master")
        yield old, new
    finally:
        old.stop()
        new.stop()


async def test_a_commit_after_a_switch_of_master_reaches_the_new_master(
    old_and_new: tuple[RedisServer, RedisServer],
) -> None:
    # A login is a commit with no load before it: the store must reconnect to the master the
    # census names instead of refusing ("the master changed") until the deadline. The client
    # still points at the old master: only the census says where to go.
    old, new = old_and_new
    census = Census(old)
    store = _store(old.port, census=census, wait_timeout_ms=200, deadline=5.0)
    first = CommitRequest("t1", create=True, sets={"a": (0, b"1")}, durable=True)
    await store.commit("k1", first)

    new.client.replicaof("no", "one")  # the failover: the replica is promoted...
    old.client.replicaof("127.0.0.1", new.port)  # ...and the old master follows it
    wait_until(lambda: _linked(old), 10, "old master following the new one")
    census.master = ("127.0.0.1", new.port)
    assert store.census is not None
    store.census.forget()  # as if its last answer were older than MAX_AGE
    second = CommitRequest("t2", create=True, sets={"a": (0, b"2")}, durable=True)
    await store.commit("k2", second)
    assert new.client.hget("sf:{k2}:s", "a") == b"1:2"
    await store.close()


class ListingCensus:
    """A census naming `master` and listing `listed` as its replicas (all up), then, after
    `then_failing_over` queries, reporting a failover under way; counts its queries."""

    def __init__(
        self,
        master: RedisServer,
        listed: list[tuple[str, int]],
        then_failing_over: int | None = None,
    ) -> None:
        self.master = ("127.0.0.1", master.port)
        self.listed = frozenset(listed)
        self.then_failing_over = then_failing_over
        self.queries = 0

    async def __call__(self) -> ReplicaCensus:
        self.queries += 1
        failing = self.then_failing_over is not None and self.queries > self.then_failing_over
        return ReplicaCensus(self.master, len(self.listed), failing, listed=self.listed)


def _durable_store(master: RedisServer, census: ListingCensus) -> RedisSessionStore:
    return _store(master.port, census=census, wait_timeout_ms=1000, deadline=2.0)


async def test_every_listed_replica_acknowledging_needs_no_census_after_wait(
    old_and_new: tuple[RedisServer, RedisServer],
) -> None:
    # The ROLE behind WAIT shows the listed replica connected and WAIT counted it: whatever a
    # failover promotes holds the write, so no Sentinel is asked after each batch: two
    # queries for twenty commits (where to connect, and the cached one before the writes; a
    # third if a slow machine lets that one age past MAX_AGE), not one per commit.
    master, replica = old_and_new
    census = ListingCensus(master, [("127.0.0.1", replica.port)])
    store = _durable_store(master, census)
    for n in range(20):
        await store.commit(f"k{n}", CommitRequest("t", create=True, sets={"a": (0, b"1")}))
    assert census.queries <= 3
    await store.close()


async def test_a_replica_the_census_did_not_list_proves_nothing(
    old_and_new: tuple[RedisServer, RedisServer],
) -> None:
    # The replica that acknowledged is not the one the Sentinels listed (the listed one is
    # being promoted, say): counting acknowledgements is not enough, the census after WAIT
    # decides, and it sees the failover.
    master, _ = old_and_new
    # Queries 1 and 2: the census before the write and where to connect.
    census = ListingCensus(master, [("127.0.0.1", free_port())], then_failing_over=2)
    store = _durable_store(master, census)
    request = CommitRequest("t", create=True, sets={"a": (0, b"1")})
    with pytest.raises(NotDurable):
        await store.commit("k1", request)
    assert census.queries >= 3  # then the one after WAIT
    await store.close()


@pytest.mark.sentinel
async def test_the_replica_a_real_sentinel_lists_is_the_one_role_shows(tmp_path: Path) -> None:
    # The proof compares the Sentinel's list with the master's ROLE: both must name the
    # replica alike (the master's view of it), or every commit would ask the Sentinels again.
    fleet = ReplicatedRedis(tmp_path)
    connection = connect(RedisOptions(sentinels=[("127.0.0.1", fleet.sentinel_port)]))
    try:
        assert connection.census is not None
        sentinel_census, queries = connection.census, 0

        async def counted() -> ReplicaCensus | None:
            nonlocal queries
            queries += 1
            return await sentinel_census()

        store = RedisSessionStore(
            connection,
            Limits(idle_ms=60_000, lifetime_ms=600_000, max_bytes=4096),
            wait_replicas=1,
            wait_timeout_ms=1000,
            deadline=2.0,
            census=counted,
        )
        for n in range(20):
            await store.commit(f"k{n}", CommitRequest("t", create=True, sets={"a": (0, b"1")}))
        assert 1 <= queries <= 2  # before the writes (again past MAX_AGE), none after each
    finally:
        await connection.close()
        fleet.stop()


def _linked(replica: RedisServer) -> bool:
    return replica.client.info("replication").get("master_link_status") == "up"


async def test_a_load_from_a_replica_is_refused_not_read_as_no_session(tmp_path: Path) -> None:
    """Found on a real cluster: during a failover the app reached, under the master's name, a
    pod that had just restarted as an (empty, syncing) replica; the load found nothing and three
    logged-in users were answered 401 and had their cookie cleared. A load must only ever be
    answered by a master."""
    master = RedisServer(tmp_path / "m")
    replica = RedisServer(tmp_path / "r", None, "--replicaof", "127.0.0.1", str(master.port))
    try:
        store = _store(replica.port, wait_replicas=0, wait_timeout_ms=100, deadline=0.5)
        with pytest.raises(StoreUnavailable):
            await store.load("a" * 32)  # a session the replica does not (yet) hold
        await store.close()
    finally:
        replica.stop()
        master.stop()


async def test_reads_leave_a_deposed_master_once_the_census_names_another(
    old_and_new: tuple[RedisServer, RedisServer],
) -> None:
    # A master the Sentinels replaced may go on taking itself for a master (cut off, or not
    # yet reconfigured). Loads and non-durable commits must follow the census there too:
    # a load it answered hid a write the new master held (a cart that later grew past what
    # its user was told, in a make e2e upgrade run).
    old, new = old_and_new
    census = Census(old)
    store = _store(old.port, census=census, wait_replicas=0, wait_timeout_ms=0, deadline=2.0)
    await store.commit("k", CommitRequest("t1", create=True, sets={"a": (0, b"1")}))
    wait_until(lambda: new.client.exists("sf:{k}:s") == 1, 5, "the session replicated")

    new.client.replicaof("no", "one")  # promoted; the old master is left as it was
    on_new = _store(new.port, wait_replicas=0, wait_timeout_ms=0, deadline=2.0)
    await on_new.commit("k", CommitRequest("t2", create=False, sets={"a": (1, b"2")}))
    await on_new.close()
    census.master = ("127.0.0.1", new.port)

    started, seen = time.monotonic(), []
    while time.monotonic() - started < MAX_AGE + 1.0:
        loaded = await store.load("k")
        assert loaded is not None
        seen.append(loaded.fields["a"])
    switched = seen.index((2, b"2"))  # ValueError: every load still went to the old master
    assert set(seen[switched:]) == {(2, b"2")}  # and none went back

    await store.commit("k", CommitRequest("t3", create=False, sets={"a": (2, b"3")}))
    assert new.client.hget("sf:{k}:s", "a") == b"3:3"
    assert old.client.hget("sf:{k}:s", "a") == b"1:1"
    await store.close()
