"""What the Sentinels say about the master and its replicas, for durable commits.

A commit is acknowledged only if the replicas that could be promoted hold it. The census
before the write (cached up to `MAX_AGE`) says how many replicas `WAIT` must reach. After
`WAIT`, one of two proofs:

- **The `Ack` covers every replica the Sentinels list** (`ReplicaCensus.covered_by`): the
  `ROLE` sent right behind `WAIT` shows the master's connected replicas to be exactly those,
  and `WAIT` counted them all. A failover promotes one of the replicas the Sentinels know, and
  a replica being promoted leaves the master first (it would be missing from `ROLE`): whichever
  is promoted holds the write. The usual case: no query to any Sentinel.
- **Otherwise a census taken after the acknowledgement**: no failover started meanwhile, no
  replica was missed. It closes the window a cached census leaves open when a replica is down
  or unlisted: a failover that starts while the cached census still says all is well, detaches
  the replica it promotes, and lets a replica that just rejoined acknowledge writes the
  failover then erases (seen in `make bench-failover`: a second, spurious failover right
  after a planned one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis import exceptions as rx

from .endpoint import Address
from .pipe import Ack


@dataclass(frozen=True, slots=True)
class ReplicaCensus:
    """The master's address, how many of its replicas no Sentinel knows to be down, and
    whether any Sentinel sees the master in trouble (down, or a failover under way);
    `dissenting`: Sentinels that answered naming another master (for metrics only); `listed`:
    the replicas of the master any of the agreeing Sentinels lists."""

    master: Address
    replicas: int
    failing_over: bool
    dissenting: int = 0
    listed: frozenset[Address] = frozenset()  # every replica they list, down or not

    def covered_by(self, ack: Ack | None) -> bool:
        """Whether `ack` shows a write on every replica the Sentinels list: then a failover
        cannot promote a replica without it (see the module's doc)."""
        return (
            ack is not None
            and bool(self.listed)
            and ack.connected == self.listed
            and ack.acknowledged >= len(self.listed)
        )


Census = Callable[[], Awaitable[ReplicaCensus | None]]
MAX_AGE = 1.0  # seconds a census may be reused before a write


def master_named_by(census: Census) -> Callable[[], Awaitable[tuple[str, int]]]:
    """Where to connect: the master a majority of Sentinels name, asked afresh each time
    (connecting is rare: at start, after a failure, after the master changed). The one
    decision about the master: durable commits refuse a connection to any other. Raises
    redis' `ConnectionError` when no majority answers (retried, then 503)."""

    async def master() -> tuple[str, int]:
        answer = await census()
        if answer is None:
            raise rx.ConnectionError("no majority of Sentinels named a master")
        return answer.master

    return master


class CensusCache:
    """One census query in flight per process, shared by every request."""

    def __init__(self, census: Census) -> None:
        self.census = census
        self._last: ReplicaCensus | None = None
        self._last_at = -MAX_AGE
        self._task: asyncio.Task[tuple[float, ReplicaCensus | None]] | None = None

    def cached(self) -> ReplicaCensus | None:
        """The last census if at most `MAX_AGE` old, without asking anyone."""
        return self._last if time.monotonic() - self._last_at <= MAX_AGE else None

    async def recent(self) -> ReplicaCensus | None:
        """A census at most `MAX_AGE` old (None: no majority of Sentinels answered)."""
        return self.cached() or await self._newer_than(time.monotonic() - MAX_AGE)

    def forget(self) -> None:
        """The census no longer holds (a failover, another master): ask again next time
        rather than keep refusing writes on it for up to `MAX_AGE`."""
        self._last_at = -MAX_AGE
        if self._task is not None and self._task.done():
            self._task = None  # nor reuse the answer it came from

    async def fresh(self) -> ReplicaCensus | None:
        """A census whose queries were sent after this call."""
        return await self._newer_than(time.monotonic())

    async def _newer_than(self, since: float) -> ReplicaCensus | None:
        while True:
            task = self._task
            if task is None or (task.done() and _sent_at(task) < since):
                task = self._task = asyncio.ensure_future(self._query())
            # Shielded: a request cut off by its deadline leaves the query to the others.
            sent, result = await asyncio.shield(task)
            if sent >= since:
                return result

    async def _query(self) -> tuple[float, ReplicaCensus | None]:
        # Stamped when the task first runs, not when it is made: every commit one WAIT reply
        # acknowledged resumes, and asks, before it runs, so the whole batch shares one census.
        sent = time.monotonic()
        result = await self.census()
        if result is not None:
            self._last, self._last_at = result, time.monotonic()
        return sent, result


def _sent_at(task: asyncio.Task[tuple[float, ReplicaCensus | None]]) -> float:
    """When a finished query's questions went out (never, for one that failed)."""
    if task.cancelled() or task.exception() is not None:
        return float("-inf")
    return task.result()[0]
