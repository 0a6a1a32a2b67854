"""High availability with real processes: 3 Redis + 3 Sentinels (the chart's bootstrap
scripts and config files), 3 app replicas under gunicorn, HAProxy round-robin in front."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.ha_cluster import LOAD_PASSWORD, HACluster, wait_for_new_master
from harness.load import UserLog, drive, login, write_outage
from harness.processes import AppServer, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.sentinel]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[HACluster]:
    fleet = HACluster(tmp_path)
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


async def log_in_users(cluster: HACluster, n: int) -> list[tuple[httpx.AsyncClient, UserLog]]:
    return list(
        await asyncio.gather(
            *(login(cluster.url, f"user-{i:04d}", LOAD_PASSWORD) for i in range(1, n + 1))
        )
    )


async def still_logged_in(users: list[tuple[httpx.AsyncClient, UserLog]]) -> list[str]:
    replies = await asyncio.gather(*(client.get("/me") for client, _ in users))
    return [log.name for (_, log), r in zip(users, replies, strict=True) if r.status_code != 200]


def assert_no_session_lost(users: list[tuple[httpx.AsyncClient, UserLog]]) -> None:
    for _, log in users:
        assert not log.sessions_lost(), f"{log.name} lost its session: {log.sessions_lost()[:3]}"
        assert not log.lost_acknowledged_writes(), f"{log.name}: {log.lost_acknowledged_writes()}"


async def close_all(users: list[tuple[httpx.AsyncClient, UserLog]]) -> None:
    for client, _ in users:
        await client.aclose()


async def test_pod_hops_see_every_write(cluster: HACluster) -> None:
    [(client, _)] = await log_in_users(cluster, 1)
    served, values = set(), []
    for i in range(30):
        wrote = await client.post("/cart/items", json={"item_id": f"i{i}", "qty": 1})
        read = await client.get("/cart")
        counted = await client.post("/counter")
        assert wrote.status_code == read.status_code == counted.status_code == 200
        assert f"i{i}" in read.json()["items"]  # a read on another replica sees the write
        assert wrote.headers["x-served-by"] != read.headers["x-served-by"]
        served |= {r.headers["x-served-by"] for r in (wrote, read, counted)}
        values.append(counted.json()["counter"])
    assert values == list(range(1, 31))
    assert served == {"app-0", "app-1", "app-2"}
    await client.aclose()


async def test_app_replica_killed_under_load_loses_nothing(cluster: HACluster) -> None:
    users = await log_in_users(cluster, 12)
    stop = asyncio.Event()
    load = asyncio.create_task(drive(users, stop, max_seconds=20))
    await asyncio.sleep(1.5)
    cluster.apps[1].proc.signal(signal.SIGKILL)  # gunicorn master and workers at once
    await asyncio.sleep(4)
    stop.set()
    await load
    assert_no_session_lost(users)
    failed_reads = [e for _, log in users for e in log.failures("/me")]
    assert failed_reads == []  # idempotent requests are retried by the proxy: no failure
    served_after = {e.served_by for _, log in users for e in log.events[-4:]}
    assert served_after == {"app-0", "app-2"}
    assert await still_logged_in(users) == []
    await close_all(users)


async def test_redis_master_killed_under_load_keeps_every_login(cluster: HACluster) -> None:
    users = await log_in_users(cluster, 30)  # acknowledged: replicas hold them (WAIT)
    stop = asyncio.Event()
    load = asyncio.create_task(drive(users[:10], stop, max_seconds=30))
    await asyncio.sleep(1.0)
    old = cluster.master()
    assert old is not None
    killed_at = time.monotonic()
    cluster.kill_redis(old)
    new = await asyncio.to_thread(wait_for_new_master, cluster, old)
    ready = []
    for app in cluster.apps:  # readiness rides out the failover instead of emptying the pool
        async with httpx.AsyncClient(base_url=app.url) as direct:
            ready.append((await direct.get("/readyz")).status_code)
    await asyncio.sleep(3)
    stop.set()
    await load
    outage = write_outage([log for _, log in users], killed_at)
    print(f"\nmaster {old.port} -> {new.port}: writes acknowledged again after {outage:.2f}s")
    assert outage is not None and outage < 10
    assert ready == [200, 200, 200]
    assert_no_session_lost(users)
    for _, log in users[:10]:
        for failure in log.failures():
            assert failure.status == 503 and failure.elapsed < 4.5, failure
    assert await still_logged_in(users) == []
    await close_all(users)


async def test_isolated_old_master_acknowledges_nothing_and_rejoins(cluster: HACluster) -> None:
    users = await log_in_users(cluster, 10)
    stop = asyncio.Event()
    load = asyncio.create_task(drive(users, stop, max_seconds=40))
    await asyncio.sleep(1.0)
    old = cluster.master()
    assert old is not None
    cluster.kill_redis(old, signal.SIGSTOP)  # frozen: alive to its clients, silent to Sentinel
    new = await asyncio.to_thread(wait_for_new_master, cluster, old)
    await asyncio.sleep(2)  # writes go on against the new master
    assert old.redis_proc is not None
    old.redis_proc.signal(signal.SIGCONT)
    await asyncio.to_thread(
        wait_until,
        lambda: cluster.role(old) == "slave" and cluster.master() is new,
        20,
        "old master rejoining as replica",
    )
    await asyncio.sleep(2)  # and writes keep going with the old master back as a replica
    stop.set()
    await load
    assert_no_session_lost(users)
    assert all(len(log.acked_counters()) > 20 for _, log in users)
    assert await still_logged_in(users) == []
    await asyncio.to_thread(cluster.wait_healthy, 20)
    await close_all(users)


async def test_failover_happens_with_one_sentinel_down(cluster: HACluster) -> None:
    users = await log_in_users(cluster, 5)
    old = cluster.master()
    assert old is not None
    cluster.kill_sentinel(next(n for n in cluster.nodes if n is not old))
    cluster.kill_redis(old)
    killed_at = time.monotonic()
    new = await asyncio.to_thread(wait_for_new_master, cluster, old, 20)
    stop = asyncio.Event()
    await drive(users, stop, max_seconds=3)
    print(f"\nfailover with 2 of 3 sentinels: new master after {time.monotonic() - killed_at:.2f}s")
    assert new is not old
    assert all(log.acked_counters() for _, log in users)
    assert_no_session_lost(users)
    await close_all(users)


async def test_killed_master_comes_back_as_replica(cluster: HACluster) -> None:
    """A restarted node asks the Sentinels first and never makes a second master."""
    users = await log_in_users(cluster, 5)
    old = cluster.master()
    assert old is not None
    cluster.kill_redis(old)
    new = await asyncio.to_thread(wait_for_new_master, cluster, old)
    cluster.start_redis(old)  # empty, like a pod rescheduled without a volume
    await asyncio.to_thread(cluster.wait_healthy, 30)
    assert cluster.master() is new and cluster.role(old) == "slave"
    assert await still_logged_in(users) == []
    await close_all(users)


async def test_master_restarted_at_once_with_an_old_snapshot_wipes_nothing(
    cluster: HACluster,
) -> None:
    """Found on a real cluster: a crashed master restarted by the kubelet within a second, the
    Sentinels still naming it, with a dump.rdb in its data dir (a replica's full sync leaves
    one). It came back as master with that old data, the replicas resynced from it, and every
    session made since was gone. It must wait for the failover instead."""
    old = cluster.master()
    assert old is not None
    with cluster.redis(old) as client:
        client.save()  # an old snapshot on disk, as a past sync leaves
    users = await log_in_users(cluster, 6)  # sessions the snapshot does not have
    cluster.kill_redis(old)
    cluster.start_redis(old)  # at once: the Sentinels have not noticed yet
    new = await asyncio.to_thread(wait_for_new_master, cluster, old)
    await asyncio.to_thread(cluster.wait_healthy, 30)
    assert cluster.master() is new and cluster.role(old) == "slave"
    assert await still_logged_in(users) == []
    await close_all(users)


async def test_frozen_node_with_first_sentinel_does_not_stall_any_replica(
    cluster: HACluster,
) -> None:
    """A node that vanishes without resetting connections (its redis and the first-listed
    Sentinel freeze, as when a machine drops off the network): every app replica must write
    again soon after the failover, not hang on its pooled connections to the dead node."""
    users = await log_in_users(cluster, 3)
    old = cluster.master()
    assert old is cluster.nodes[0]  # the first Sentinel in every app's list is on this node
    assert old.redis_proc is not None and old.sentinel_proc is not None
    frozen_at = time.monotonic()
    old.redis_proc.signal(signal.SIGSTOP)
    old.sentinel_proc.signal(signal.SIGSTOP)
    await asyncio.to_thread(wait_for_new_master, cluster, old)
    recovered: dict[str, float] = {}

    async def first_write(app: AppServer) -> None:
        async with httpx.AsyncClient(base_url=app.url, cookies=users[0][0].cookies) as direct:
            for _ in range(100):  # bounded: 100 tries over at most ~15 s
                if (await direct.post("/counter")).status_code == 200:
                    recovered[app.name] = round(time.monotonic() - frozen_at, 2)
                    return
                await asyncio.sleep(0.15)

    await asyncio.gather(*(first_write(app) for app in cluster.apps))
    print(f"\nwrites again after the node froze, per replica: {recovered}")
    assert set(recovered) == {app.name for app in cluster.apps}
    assert max(recovered.values()) < 8
    await close_all(users)


async def test_forced_failover_of_a_live_master_loses_no_acknowledged_write(
    cluster: HACluster,
) -> None:
    """SENTINEL FAILOVER deposes a master that is alive and still serving: the case of a
    failover started on a false alarm (a stall longer than down-after-milliseconds). Writes
    acknowledged by the deposed master in the moment before its replicas are moved must not
    be lost: WAIT must be satisfied by every replica Sentinel counts as healthy."""
    users = await log_in_users(cluster, 12)
    stop = asyncio.Event()
    load = asyncio.create_task(drive(users, stop, max_seconds=60, pause=0.0))
    for _ in range(3):  # bounded: three forced failovers
        await asyncio.sleep(1.5)
        old = cluster.master()
        assert old is not None
        with cluster.sentinel(cluster.nodes[0]) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", "sessionfleet")
        await asyncio.to_thread(wait_for_new_master, cluster, old, 20)
        await asyncio.to_thread(cluster.wait_healthy, 30)
    await asyncio.sleep(1.5)
    stop.set()
    await load
    lost = {
        log.name: log.lost_acknowledged_writes()
        for _, log in users
        if log.lost_acknowledged_writes()
    }
    assert lost == {}
    assert_no_session_lost(users)
    await close_all(users)
