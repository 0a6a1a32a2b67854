"""The census cache: reused while recent, fresh means asked after the call, shared; and the
proof an acknowledgement gives without asking again."""

from __future__ import annotations

import asyncio

import pytest
from redis import exceptions as rx

from app.sessions import Ack
from app.sessions.census import CensusCache, ReplicaCensus

HEALTHY = ReplicaCensus(("10.0.0.1", 6379), 2, failing_over=False)


class Sentinels:
    def __init__(self, *answers: ReplicaCensus | None) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def __call__(self) -> ReplicaCensus | None:
        self.asked += 1
        await asyncio.sleep(0.01)
        return self.answers[min(self.asked, len(self.answers)) - 1]


async def test_recent_census_is_reused() -> None:
    sentinels = Sentinels(HEALTHY)
    cache = CensusCache(sentinels)
    assert await cache.recent() == HEALTHY
    assert await cache.recent() == HEALTHY
    assert sentinels.asked == 1


async def test_fresh_census_is_asked_after_the_call() -> None:
    failing = ReplicaCensus(("10.0.0.1", 6379), 2, failing_over=True)
    sentinels = Sentinels(HEALTHY, failing)
    cache = CensusCache(sentinels)
    assert await cache.recent() == HEALTHY
    assert await cache.fresh() == failing  # not the recent one: a failover began since
    assert sentinels.asked == 2


async def test_calls_made_before_the_query_went_out_share_it() -> None:
    # Every commit one WAIT reply acknowledged asks in the same loop turn: one query for all.
    sentinels = Sentinels(HEALTHY)
    cache = CensusCache(sentinels)
    results = await asyncio.gather(*(cache.fresh() for _ in range(10)))
    assert results == [HEALTHY] * 10 and sentinels.asked == 1


async def test_a_call_made_while_a_query_is_out_waits_for_the_next_one() -> None:
    failing = ReplicaCensus(("10.0.0.1", 6379), 2, failing_over=True)
    sentinels = Sentinels(HEALTHY, failing)
    cache = CensusCache(sentinels)
    first = asyncio.ensure_future(cache.fresh())
    await asyncio.sleep(0.005)  # the first query is out, not answered (the fake takes 10 ms)
    assert sentinels.asked == 1
    assert await cache.fresh() == failing  # asked after its call, not the one already out
    assert await first == HEALTHY and sentinels.asked == 2


async def test_a_failed_query_is_not_reused() -> None:
    sentinels = Sentinels(HEALTHY)
    cache = CensusCache(sentinels)
    cache.census = _raise
    with pytest.raises(ConnectionError):
        await cache.fresh()
    cache.census = sentinels
    assert await cache.recent() == HEALTHY and sentinels.asked == 1


async def _raise() -> ReplicaCensus | None:
    raise ConnectionError("lost")


async def test_no_answer_is_not_replaced_by_an_older_census() -> None:
    sentinels = Sentinels(HEALTHY, None)
    cache = CensusCache(sentinels)
    assert await cache.recent() == HEALTHY
    assert await cache.fresh() is None


async def test_a_forgotten_census_is_asked_again() -> None:
    failing = ReplicaCensus(("10.0.0.1", 6379), 2, failing_over=True)
    sentinels = Sentinels(failing, HEALTHY)
    cache = CensusCache(sentinels)
    assert await cache.recent() == failing
    cache.forget()  # the store refused a write on it: the next one must not wait MAX_AGE
    assert await cache.recent() == HEALTHY


R1, R2, R3 = ("10.0.0.2", 6379), ("redis-1.redis", 6379), ("10.0.0.3", 6379)


def test_an_ack_names_the_replicas_a_master_role_lists() -> None:
    role = [b"master", 300, [[b"10.0.0.2", b"6379", b"300"], [b"redis-1.redis", b"6379", b"290"]]]
    assert Ack.of(2, role) == Ack(2, frozenset({R1, R2}))
    # A replica's ROLE, an error reply (an ACL without ROLE), a WAIT that failed: no proof.
    assert Ack.of(1, [b"slave", b"10.0.0.1", 6379, b"connected", 300]) == Ack(1, frozenset())
    assert Ack.of(1, rx.NoPermissionError("NOPERM")) == Ack(1, frozenset())
    assert Ack.of(rx.ResponseError("ERR"), role).acknowledged == 0


def test_only_every_listed_replica_acknowledging_covers_a_write() -> None:
    census = ReplicaCensus(("10.0.0.1", 6379), 2, False, listed=frozenset({R1, R2}))
    assert census.covered_by(Ack(2, frozenset({R1, R2})))
    assert not census.covered_by(Ack(1, frozenset({R1, R2})))  # one had not acknowledged
    assert not census.covered_by(Ack(2, frozenset({R1, R3})))  # a replica nobody listed
    assert not census.covered_by(Ack(1, frozenset({R1})))  # a listed one left the master
    assert not census.covered_by(None)
    assert not HEALTHY.covered_by(Ack(0, frozenset()))  # nothing listed proves nothing
