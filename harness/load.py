"""A small, bounded load driver for the HA tests and the failover benchmark.

Each simulated user has its own cookie jar, logs in, then alternates `POST /counter` and
`GET /me`, recording every answer. The checks live on `UserLog`: an acknowledged counter value
must never be seen again (that would be a lost acknowledged write), and a 401 after a
successful login means the session was lost.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

import httpx

TIMEOUT = httpx.Timeout(10.0, connect=2.0)


@dataclass
class Event:
    at: float  # monotonic
    path: str
    status: int  # 0 = transport error
    value: int | None = None
    served_by: str = ""
    elapsed: float = 0.0


@dataclass
class UserLog:
    name: str
    events: list[Event] = field(default_factory=list)

    def acked_counters(self) -> list[int]:
        return [e.value for e in self.events if e.path == "/counter" and e.value is not None]

    def lost_acknowledged_writes(self) -> list[tuple[int, int]]:
        """(before, after) pairs where a later acknowledged value did not exceed an earlier one."""
        values = self.acked_counters()
        return [(a, b) for a, b in itertools.pairwise(values) if b <= a]

    def sessions_lost(self) -> list[Event]:
        return [e for e in self.events if e.status == 401]

    def failures(self, path: str | None = None) -> list[Event]:
        return [e for e in self.events if e.status != 200 and (path is None or e.path == path)]


async def timed(
    client: httpx.AsyncClient, method: str, path: str, log: UserLog, **kwargs: object
) -> Event:
    started = time.monotonic()
    try:
        response = await client.request(method, path, **kwargs)  # type: ignore[arg-type]
        status = response.status_code
        value = response.json().get("counter") if status == 200 and path == "/counter" else None
        served_by = response.headers.get("x-served-by", "")
    except httpx.HTTPError:
        status, value, served_by = 0, None, ""
    event = Event(started, path, status, value, served_by, time.monotonic() - started)
    log.events.append(event)
    return event


async def login(base_url: str, user: str, password: str) -> tuple[httpx.AsyncClient, UserLog]:
    client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT)
    log = UserLog(user)
    for _ in range(20):  # bounded: a login during a failover may get 503 + Retry-After
        event = await timed(
            client, "POST", "/login", log, json={"username": user, "password": password}
        )
        if event.status == 200:
            log.events.clear()
            return client, log
        await asyncio.sleep(0.2)
    raise AssertionError(f"{user} could not log in: {log.events}")


async def drive(
    users: list[tuple[httpx.AsyncClient, UserLog]],
    stop: asyncio.Event,
    *,
    max_seconds: float,
    max_requests_per_user: int = 5000,
    pause: float = 0.01,
) -> None:
    """Run every user's loop until `stop` is set, `max_seconds` pass, or the request cap."""
    deadline = time.monotonic() + max_seconds

    async def loop(client: httpx.AsyncClient, log: UserLog) -> None:
        for i in range(max_requests_per_user):
            if stop.is_set() or time.monotonic() > deadline:
                return
            if i % 2 == 0:
                await timed(client, "POST", "/counter", log)
            else:
                await timed(client, "GET", "/me", log)
            await asyncio.sleep(pause)

    await asyncio.gather(*(loop(client, log) for client, log in users))


def write_outage(logs: list[UserLog], since: float) -> float | None:
    """Seconds from `since` until the first write started after it was acknowledged."""
    done = [
        e.at + e.elapsed
        for log in logs
        for e in log.events
        if e.path == "/counter" and e.status == 200 and e.at >= since
    ]
    return min(done) - since if done else None
