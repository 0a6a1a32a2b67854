"""The durability census (a majority of Sentinels naming the master) recovers as soon as a
majority answers again: a restarted Sentinel is asked afresh, never left behind."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.main import redis_options
from app.sessions import connect
from app.settings import Settings
from harness.ha_cluster import HACluster

pytestmark = [pytest.mark.slow, pytest.mark.sentinel]


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[HACluster]:
    cluster = HACluster(tmp_path, app_replicas=0)
    try:
        cluster.start_redis_fleet()
        yield cluster
    finally:
        cluster.stop()


async def _first_majority(census: object, within: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await census() is not None:  # type: ignore[operator]
            return time.monotonic() - started
    return None


async def test_census_follows_a_restarted_sentinel_while_another_is_lost(
    fleet: HACluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fleet.app_environment().items():  # what an app replica is given
        monkeypatch.setenv(name, value)
    redis = connect(redis_options(Settings()))
    census, closers = redis.census, redis.closers
    assert census is not None
    try:
        assert await census() is not None
        lost, restarted = fleet.nodes[1], fleet.nodes[0]
        assert lost.sentinel_proc is not None
        lost.sentinel_proc.signal(signal.SIGSTOP)  # its node vanished: silence, no RST
        fleet.kill_sentinel(restarted)
        assert await census() is None  # one of three answers: no majority
        fleet.start_sentinel(restarted)
        took = await _first_majority(census, within=15)
        assert took is not None, "no majority after the Sentinel came back"
        assert await census() is not None  # and it stays
    finally:
        for close in closers:
            await close()
