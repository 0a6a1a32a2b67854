"""What the Sentinel census adds to /metrics: outcomes, master changes, durable replicas; and
the census counting Sentinels that name another master."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import REGISTRY

from app.ops.metrics import PrometheusObserver
from app.sessions import ReplicaCensus
from app.sessions.connect import sentinel_census
from app.sessions.observer import observed

A, B = ("10.0.0.1", 6379), ("10.0.0.2", 6379)


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def census_count(outcome: str) -> float:
    return sample("sessionfleet_sentinel_census_total", outcome=outcome)


def test_each_census_outcome_is_counted() -> None:
    observer = PrometheusObserver()
    cases = [
        (ReplicaCensus(A, 2, failing_over=False), "agreed"),
        (ReplicaCensus(A, 2, failing_over=False, dissenting=1), "dissent"),
        (ReplicaCensus(A, 1, failing_over=True), "failing_over"),
        (None, "no_majority"),
    ]
    for census, outcome in cases:
        before = census_count(outcome)
        observer.census_taken(census)
        assert census_count(outcome) == before + 1, outcome


def test_durable_replicas_follow_the_latest_census() -> None:
    observer = PrometheusObserver()
    observer.census_taken(ReplicaCensus(A, 2, failing_over=False))
    assert sample("sessionfleet_redis_durable_replicas") == 2
    observer.census_taken(ReplicaCensus(A, 0, failing_over=False))
    assert sample("sessionfleet_redis_durable_replicas") == 0
    observer.census_taken(None)  # no majority: no count of replicas either, the last one stays
    assert sample("sessionfleet_redis_durable_replicas") == 0


def test_only_a_switch_of_master_counts_as_a_change() -> None:
    observer = PrometheusObserver()
    before = sample("sessionfleet_redis_master_changes_total")
    for master in (A, A, B, B, A):
        observer.census_taken(ReplicaCensus(master, 2, failing_over=False))
    observer.census_taken(None)
    observer.census_taken(ReplicaCensus(A, 2, failing_over=False))
    assert sample("sessionfleet_redis_master_changes_total") == before + 2  # A->B, B->A


def test_observed_census_reports_and_returns_each_result() -> None:
    seen: list[ReplicaCensus | None] = []

    class Recorder(PrometheusObserver):
        def census_taken(self, census: ReplicaCensus | None) -> None:
            seen.append(census)

    answers = iter([ReplicaCensus(A, 2, failing_over=False), None])

    async def census() -> ReplicaCensus | None:
        return next(answers)

    wrapped = observed(census, Recorder())
    results = [asyncio.run(wrapped()), asyncio.run(wrapped())]
    assert results == seen == [ReplicaCensus(A, 2, failing_over=False), None]


class FakeSentinel:
    """Answers SENTINEL MASTER / SENTINEL REPLICAS as the pipelined connection does: a future
    of (the flat reply of alternating names and values, None)."""

    def __init__(self, master: tuple[str, int], replicas: int = 2) -> None:
        self.master = [b"ip", master[0].encode(), b"port", str(master[1]).encode()]
        self.master += [b"flags", b"master"]
        # Replicas on the master's host, ports after its own.
        self.replicas = [
            [b"ip", master[0].encode(), b"port", str(master[1] + n).encode(), b"flags", b"slave"]
            for n in range(1, replicas + 1)
        ]

    def call(self, *args: Any, **_: Any) -> asyncio.Future[tuple[Any, None]]:
        future = asyncio.get_running_loop().create_future()
        future.set_result((self.master if args[1] == "MASTER" else self.replicas, None))
        return future


def test_census_counts_sentinels_naming_another_master() -> None:
    split = sentinel_census(
        [FakeSentinel(A), FakeSentinel(A), FakeSentinel(B)],  # type: ignore[list-item]
        "sessionfleet",
    )
    # Only the replicas the agreeing Sentinels list: B's are another master's.
    listed = frozenset({(A[0], A[1] + 1), (A[0], A[1] + 2)})
    assert asyncio.run(split()) == ReplicaCensus(A, 2, False, dissenting=1, listed=listed)
    agreed = sentinel_census(
        [FakeSentinel(A) for _ in range(3)],  # type: ignore[misc]
        "sessionfleet",
    )
    assert asyncio.run(agreed()) == ReplicaCensus(A, 2, False, dissenting=0, listed=listed)
