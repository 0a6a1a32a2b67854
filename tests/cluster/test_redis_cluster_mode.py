"""The local container cluster in cluster mode (`make local-up MODE=cluster`): a Redis Cluster of
3 shards x 1 replica run by the chart's cluster scripts, HAProxy in front. Sessions made
through the ingress spread over every shard; a shard master's crash and slots moved under
load lose no acknowledged write, and the crashed master rejoins as a replica with its node ID."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.sessions import store_key_of
from harness.processes import wait_until
from loadtest.chaos.cluster_nodes import NodeRow
from loadtest.chaos.local import docker
from loadtest.chaos.local_cluster import LocalRedisCluster
from loadtest.consistency import CounterModel, Reply
from tests.cluster.conftest import Fleet

# Starting the fleet (building its images on a fresh machine) counts against the first test.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(900)]


def logged_in(fleet: Fleet, user: str) -> httpx.Client:
    client = httpx.Client(base_url=fleet.url, timeout=10)
    response = client.post("/login", json={"username": user, "password": fleet.password})
    assert response.status_code == 200, response.text
    return client


class CounterWriters:
    """Users incrementing their session's counter in a loop (one thread per group of users),
    every answer checked by the load test's CounterModel: an acknowledged increment that a
    later answer does not include is a lost update; a 401 is a lost session."""

    def __init__(self, fleet: Fleet, users: list[str], threads: int = 4) -> None:
        self.clients = {user: logged_in(fleet, user) for user in users}
        self.models = {user: CounterModel() for user in users}
        self.anomalies: list[str] = []
        self.acked = 0
        self.unanswered = 0
        self.final_answers = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(users[i::threads],), daemon=True)
            for i in range(threads)
        ]

    def __enter__(self) -> CounterWriters:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stops the writers, then one more increment per user, checked like the others:
        every acknowledged increment must still be there."""
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        acked = self.acked
        for user in self.clients:
            self.increment(user)
        self.final_answers = self.acked - acked
        for client in self.clients.values():
            client.close()

    def _run(self, users: list[str]) -> None:
        while not self._stop.is_set():
            for user in users:
                self.increment(user)

    def increment(self, user: str) -> None:
        try:
            response = self.clients[user].post("/counter")
            body = response.json() if response.content else None
            reply = Reply(response.status_code, body)
        except (httpx.TransportError, ValueError):
            reply = Reply(None)
        if reply.status == 401:
            self.anomalies.append(f"{user}: session lost (401)")
        anomaly = self.models[user].on_increment(reply)
        if anomaly is not None:
            self.anomalies.append(f"{user}: {anomaly}")
        if reply.ok:
            self.acked += 1
        elif reply.uncertain:
            self.unanswered += 1


@pytest.fixture
def cluster(sharded_env: Fleet) -> Iterator[LocalRedisCluster]:
    cluster = sharded_env.cluster
    assert isinstance(cluster, LocalRedisCluster)
    cluster.wait_healthy(120)
    # `up` is ready once the ingress answers: wait for it to route to every replica.
    served: set[str] = set()

    def every_replica_served() -> bool:
        served.add(httpx.get(f"{sharded_env.url}/healthz").headers["x-served-by"])
        return len(served) == 3

    wait_until(every_replica_served, 60, "the ingress routing to app-a, app-b and app-c")
    yield cluster
    cluster.wait_healthy(120)  # each test leaves it whole for the next


def restart_count(cluster: LocalRedisCluster, host: str) -> int:
    return int(docker("inspect", "--format", "{{.RestartCount}}", cluster.container(host)))


def label(container: str, name: str) -> str:
    return docker("inspect", "--format", f'{{{{index .Config.Labels "{name}"}}}}', container)


def test_three_shards_each_with_a_replica_on_another_node(cluster: LocalRedisCluster) -> None:
    rows = cluster.rows()
    masters = sorted((r for r in rows if r.is_master), key=lambda r: r.host)
    assert [m.host for m in masters] == ["redis-0-0", "redis-1-0", "redis-2-0"]
    assert sum(len(m.slots) for m in masters) == 16384
    for master in masters:
        [replica] = [r for r in rows if r.master == master.id]
        assert replica.shard == master.shard
        node_of = {r.host: label(cluster.container(r.host), "sessionfleet.node") for r in rows}
        assert node_of[replica.host] != node_of[master.host]
    # What the app process gets (`docker inspect` also lists the names set to null, unset).
    app_env = docker("exec", cluster.container("app-a"), "env").split()
    assert (
        "SESSIONFLEET_REDIS_CLUSTER_NODES=redis-0-0:6379,redis-0-1:6379,redis-1-0:6379,"
        "redis-1-1:6379,redis-2-0:6379,redis-2-1:6379"
    ) in app_env
    assert not [v for v in app_env if "SENTINEL" in v or "MASTER_NAME" in v], app_env


def test_sessions_through_the_ingress_land_on_every_shard(
    sharded_env: Fleet, cluster: LocalRedisCluster
) -> None:
    clients = [logged_in(sharded_env, f"user-{i:04d}") for i in range(1, 31)]
    served = set()
    for client in clients:
        for expected in (1, 2):
            response = client.post("/counter")
            assert response.json() == {"counter": expected}
            served.add(response.headers["x-served-by"])
        me = client.get("/me")
        assert me.status_code == 200
        served.add(me.headers["x-served-by"])
        client.close()
    assert served == {"app-a", "app-b", "app-c"}
    sessions = {
        m.host: len(cluster.cli(m.host, "--scan", "--pattern", "sf:*:s").split())
        for m in cluster.rows()
        if m.is_master
    }
    # 30 sessions over 3 shards: one left without any has a probability of ~2e-5.
    assert all(count > 0 for count in sessions.values()), sessions
    assert sum(sessions.values()) >= 30


def test_shard_master_crash_loses_no_acknowledged_write(
    sharded_env: Fleet, cluster: LocalRedisCluster
) -> None:
    shard = 0
    victim = cluster.shard_master(shard)
    restarts = restart_count(cluster, victim.host)
    with CounterWriters(sharded_env, [f"user-{i:04d}" for i in range(101, 125)]) as writers:
        time.sleep(3)
        before = writers.acked
        outcome = cluster.kill_redis_master(shard)
        time.sleep(3)
    assert writers.anomalies == [], (outcome, writers.anomalies)
    assert writers.acked > before > 0
    # The crashed master is back (restarted by its restart policy, not by us) as the
    # replica of the one that took over, with the node ID it had.
    [me] = [r for r in cluster.rows(victim.host) if "myself" in r.flags]
    new_master = cluster.shard_master(shard)
    assert new_master.host != victim.host
    assert (me.id, me.master, me.is_master) == (victim.id, new_master.id, False)
    assert restart_count(cluster, victim.host) == restarts + 1
    assert writers.final_answers == len(writers.clients)  # each checked against its model


def test_resharding_under_writes_loses_no_acknowledged_write(
    sharded_env: Fleet, cluster: LocalRedisCluster
) -> None:
    slots_before = sorted(len(r.slots) for r in cluster.rows() if r.is_master)
    with CounterWriters(sharded_env, [f"user-{i:04d}" for i in range(201, 225)]) as writers:
        time.sleep(2)
        there = cluster.reshard()
        back = cluster.reshard()  # the same number of slots the other way: balanced again
        time.sleep(2)
    assert writers.anomalies == [], (there, back, writers.anomalies)
    assert "moved 4000 slots" in there and "moved 4000 slots" in back
    assert writers.final_answers == len(writers.clients)
    # Clients are redirected, not failed (a request starved of CPU for 10 s may still time out).
    assert writers.unanswered <= writers.acked // 100, (writers.unanswered, there, back)
    assert sorted(len(r.slots) for r in cluster.rows() if r.is_master) == slots_before


def test_a_session_whose_slot_is_being_migrated_is_followed_through_ask_then_moved(
    sharded_env: Fleet, cluster: LocalRedisCluster
) -> None:
    """The window `redis-cli --cluster reshard` opens for a few milliseconds per slot, held
    open: the session's key already on the target, its slot still the source's. The source
    answers ASK naming the target by its announced hostname, which the app resolves."""
    client = logged_in(sharded_env, "user-0301")
    assert client.post("/counter").json() == {"counter": 1}
    key = f"sf:{{{store_key_of(client.cookies['sid'])}}}:s"
    slot = int(cluster.cli("redis-0-0", "cluster", "keyslot", key))
    source = next(r for r in cluster.rows() if r.is_master and slot in r.slots)
    target = next(r for r in cluster.rows() if r.is_master and r.id != source.id)
    password = (Path(sharded_env.env["SECRETS_DIR"]) / "redis-password").read_text().strip()
    move = SlotMove(cluster, slot, key, password)
    asks_before = cluster.redirections()["ASK"]
    move.start(source, target)
    try:
        for expected in (2, 3, 4):
            response = client.post("/counter")
            assert response.json() == {"counter": expected}, response.text
        assert client.get("/me").json()["user"] == "user-0301"
        assert cluster.redirections()["ASK"] > asks_before
    finally:
        move.finish(target)
    assert client.post("/counter").json() == {"counter": 5}  # MOVED, then the new owner
    move.start(target, source)  # the slot back, the same way: the cluster as the test found it
    move.finish(source)
    assert client.post("/counter").json() == {"counter": 6}
    client.close()


class SlotMove:
    """One slot moved the way redis-cli --cluster reshard moves it, one step at a time."""

    def __init__(self, cluster: LocalRedisCluster, slot: int, key: str, password: str) -> None:
        self.cluster, self.slot, self.key, self.password = cluster, slot, key, password

    def setslot(self, host: str, *args: str) -> None:
        answer = self.cluster.cli(host, "cluster", "setslot", str(self.slot), *args)
        assert answer.strip() == "OK", answer

    def start(self, source: NodeRow, target: NodeRow) -> None:
        """Importing on the target, migrating on the source, the key moved: ASK from here."""
        self.setslot(target.host, "importing", source.id)
        self.setslot(source.host, "migrating", target.id)
        migrate = ("migrate", target.host, "6379", self.key, "0", "5000", "auth", self.password)
        assert self.cluster.cli(source.host, *migrate).strip() == "OK"

    def finish(self, owner: NodeRow) -> None:
        """The slot is the owner's: told to the owner first, then to every other master."""
        masters = [r for r in self.cluster.rows() if r.is_master and r.id != owner.id]
        for master in [owner, *masters]:
            self.setslot(master.host, "node", owner.id)
