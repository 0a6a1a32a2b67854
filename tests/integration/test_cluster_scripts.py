"""The chart's Redis Cluster scripts (redis.mode: cluster), as rendered in its ConfigMap, run
against real `redis-server --cluster-enabled yes` processes on loopback: each node started by
cluster-start.sh, the cluster made and grown by cluster-bootstrap.sh (the hook Job's script).

One cluster for the module (3 shards x 1 replica, made by the first bootstrap); each test
leaves it healthy, so any one of them can run alone."""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis

from harness.chart_cluster import ClusterFleet, ClusterNode
from harness.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ALL_SLOTS = 16384


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterFleet]:
    fleet = ClusterFleet(Path(tmp_path_factory.mktemp("redis-cluster")))
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()


@pytest.fixture(scope="module")
def first_bootstrap(fleet: ClusterFleet) -> subprocess.CompletedProcess[str]:
    """The hook Job's first run, after `helm install`: six fresh nodes, no cluster."""
    return fleet.bootstrap()


@pytest.fixture
def cluster(fleet: ClusterFleet, first_bootstrap: subprocess.CompletedProcess[str]) -> ClusterFleet:
    """The fleet once made; a test that finds it broken fails here, not later."""
    assert first_bootstrap.returncode == 0, first_bootstrap.stderr
    fleet.wait_healthy()
    return fleet


def shard_master(fleet: ClusterFleet, shard: int) -> ClusterNode:
    [master] = [n for n in fleet.nodes if n.shard == shard and "master" in fleet.myself(n).flags]
    return master


def write_sessions(fleet: ClusterFleet, prefix: str, count: int = 300) -> dict[str, str]:
    """Hash-tagged keys like the app's (`sf:{<hash>}:...`), spread over every slot range."""
    written = {f"sf:{{{prefix}-{i}}}:data": f"v{i}" for i in range(count)}
    masters: dict[int, redis.Redis] = {}
    with fleet.cluster_client() as router:
        for key, value in written.items():
            port = int(router.get_node_from_key(key).port)
            if port not in masters:
                masters[port] = redis.Redis(
                    port=port, password=fleet.password, single_connection_client=True
                )
            masters[port].set(key, value)
            # Acknowledged by the shard's replica (WAIT on the writing connection), as the
            # app's commits are.
            assert masters[port].wait(1, 2000) == 1
    for client in masters.values():
        client.close()
    return written


def read_sessions(fleet: ClusterFleet, keys: dict[str, str]) -> dict[str, Any]:
    with fleet.cluster_client() as client:
        return {key: client.get(key) for key in keys}


def test_bootstrap_makes_the_shards_from_scratch(
    cluster: ClusterFleet, first_bootstrap: subprocess.CompletedProcess[str]
) -> None:
    log = first_bootstrap.stderr
    assert "no cluster yet: creating one of 3 masters" in log
    check = cluster.check()
    assert check.returncode == 0
    assert "[OK] All 16384 slots covered." in check.stdout
    topology = cluster.topology()
    masters = {n.shard: n for n in cluster.nodes if n.index == 0}
    assert sum(topology[n.port][3] for n in masters.values()) == ALL_SLOTS
    for node in cluster.nodes:
        _, role, master_id, slots, _ = topology[node.port]
        if node.index == 0:
            assert (role, slots > 0) == ("master", True)
        else:  # each shard's replica follows its own shard's master, none other
            assert (role, master_id) == ("replica", topology[masters[node.shard].port][0])
    assert all(n.ip == "127.0.0.1" for n in cluster.rows(cluster.nodes[0]))
    written = write_sessions(cluster, "made")
    assert read_sessions(cluster, written) == written


def test_running_the_bootstrap_again_changes_nothing(cluster: ClusterFleet) -> None:
    before = cluster.topology()
    again = cluster.bootstrap()
    assert again.returncode == 0, again.stderr
    assert cluster.topology() == before  # IDs, roles, masters, slots, config epochs
    for action in ("creating", "adding", "meeting", "becomes a replica", "moving slots"):
        assert action not in again.stderr


def test_a_new_shard_gets_slots_and_its_own_replica(cluster: ClusterFleet) -> None:
    written = write_sessions(cluster, "before-growth")
    shards = cluster.shards
    new_master, new_replica = cluster.grow()
    grown = cluster.bootstrap()
    assert grown.returncode == 0, grown.stderr
    assert f"shard {shards} is new: adding {new_master.address} as an empty master" in grown.stderr
    assert "moving slots onto the empty masters" in grown.stderr
    topology = cluster.topology()
    master_id, role, _, slots, _ = topology[new_master.port]
    assert role == "master"
    assert slots >= ALL_SLOTS // (shards + 1) - 1  # its share, rebalanced
    assert topology[new_replica.port][1:3] == ("replica", master_id)
    assert sum(t[3] for t in topology.values()) == ALL_SLOTS
    assert read_sessions(cluster, written) == written  # sessions moved with their slots
    with cluster.client(new_master) as client:  # the app's WAIT guards writes: see cluster.conf
        assert client.config_get("min-replicas-to-write") == {"min-replicas-to-write": "0"}
    cluster.wait_healthy()


def test_shrinking_is_refused_and_changes_nothing(cluster: ClusterFleet) -> None:
    before = cluster.topology()
    refused = cluster.bootstrap(shards=cluster.shards - 1)
    assert refused.returncode == 1
    assert "Shrinking redis.cluster.shards is not supported" in refused.stderr
    assert cluster.topology() == before


def test_a_rollback_to_fewer_shards_is_refused_before_anything_changes(
    cluster: ClusterFleet,
) -> None:
    """The pre-rollback hook's check: a rollback across a growth would delete shards that own
    slots; the same number of shards passes."""
    before = cluster.topology()
    refused = cluster.bootstrap(shards=cluster.shards - 1, check_only=True)
    assert refused.returncode == 1
    assert "Shrinking redis.cluster.shards is not supported" in refused.stderr
    allowed = cluster.bootstrap(check_only=True)
    assert allowed.returncode == 0, allowed.stderr
    assert "check only" in allowed.stderr
    assert cluster.topology() == before


def test_a_pod_that_lost_its_volume_rejoins_its_shard_on_the_next_bootstrap(
    cluster: ClusterFleet,
) -> None:
    """It comes back as a stranger with a new node ID; the next bootstrap (helm upgrade) makes
    it its shard's replica again and has every node forget its old ID."""
    master = shard_master(cluster, 2)
    [replica] = [n for n in cluster.nodes if n.shard == 2 and n is not master]
    old_id = cluster.myself(replica).id
    cluster.kill(replica)
    for name in ("nodes.conf", "redis-node.conf"):
        (replica.datadir / name).unlink()
    cluster.start_node(replica)
    cluster.wait_answering([replica])
    assert cluster.myself(replica).id != old_id
    mended = cluster.bootstrap()
    assert mended.returncode == 0, mended.stderr
    assert f"{replica.address} is new: meeting the cluster" in mended.stderr
    assert f"forgetting {old_id}" in mended.stderr
    assert cluster.myself(replica).master == cluster.myself(master).id
    for node in cluster.nodes:
        assert old_id not in {row.id for row in cluster.rows(node)}
    cluster.wait_healthy()


def test_a_restarted_master_hands_over_and_rejoins_with_its_node_id(
    cluster: ClusterFleet,
) -> None:
    """No persistence (the chart's default): the master comes back empty. It must promote its
    replica, which holds the sessions, before it starts, or that replica would resync from it
    and lose them. And it comes back with a new IP: its nodes.conf is mended first."""
    written = write_sessions(cluster, "restart")
    master = shard_master(cluster, 0)
    [replica] = [n for n in cluster.nodes if n.shard == 0 and n is not master]
    old_id = cluster.myself(master).id
    cluster.kill(master)
    # As a rescheduled pod finds it: its own line and a peer's carry addresses that are gone
    # (127.0.0.2: loopback, but nothing listens there).
    conf = master.nodes_conf.read_text()
    mine = re.search(rf"^{old_id} 127\.0\.0\.1:", conf, re.M)
    peer = re.search(rf"^(\w+) 127\.0\.0\.1:{replica.port}@", conf, re.M)
    assert mine and peer
    master.nodes_conf.write_text(
        conf.replace(f"{old_id} 127.0.0.1:", f"{old_id} 127.0.0.2:").replace(
            f"127.0.0.1:{replica.port}@", f"127.0.0.2:{replica.port}@"
        )
    )
    cluster.start_node(master)
    cluster.wait_answering([master])
    log = master.proc.log.read_text() if master.proc else ""
    assert "moved from 127.0.0.2 to 127.0.0.1" in log
    assert f"promoting my replica 127.0.0.1:{replica.port} first (FORCE)" in log
    assert "took over; I rejoin as its replica" in log
    wait_until(
        lambda: cluster.myself(master).master == cluster.myself(replica).id, 20, "rejoin as replica"
    )
    me = cluster.myself(master)
    assert me.id == old_id and me.ip == "127.0.0.1"
    assert "master" in cluster.myself(replica).flags
    cluster.wait_healthy()
    assert read_sessions(cluster, written) == written


def test_two_masters_restarted_at_once_hand_over_without_a_majority(
    cluster: ClusterFleet,
) -> None:
    """A lost node that held two of three masters (failovers move masters around) comes back:
    both restart empty at once, and no majority of masters is left to vote for their
    replicas. Starting as masters would have the replicas resync from them, empty (every
    session of two shards lost: seen on a real cluster); each replica takes over instead."""
    written = write_sessions(cluster, "two-masters")
    masters = [shard_master(cluster, shard) for shard in (0, 1)]
    for master in masters:
        cluster.kill(master)
    for master in masters:
        cluster.start_node(master)
    cluster.wait_answering(masters)
    logs = [master.proc.log.read_text() if master.proc else "" for master in masters]
    for log in logs:
        assert "took over; I rejoin as its replica" in log, log[-2000:]
    # The first may still count the second as up (its link not seen down yet) and win a vote.
    assert any("(TAKEOVER)" in log for log in logs), logs
    cluster.wait_healthy()
    assert read_sessions(cluster, written) == written


def node_logs(*nodes: ClusterNode) -> str:
    """The nodes' Redis logs, for an assertion message: why an election went as it did."""
    return "\n".join(f"--- :{n.port}\n{n.proc.tail(60) if n.proc else ''}" for n in nodes)


def test_prestop_hands_a_master_over_to_its_replica(cluster: ClusterFleet) -> None:
    written = write_sessions(cluster, "prestop")
    master = shard_master(cluster, 1)
    [replica] = [n for n in cluster.nodes if n.shard == 1 and n is not master]
    result = cluster.prestop(master)
    assert result.returncode == 0, result.stderr
    assert "handed over to" in result.stderr, f"{result.stderr}\n{node_logs(master, replica)}"
    assert "slave" in cluster.myself(master).flags
    assert cluster.myself(master).master == cluster.myself(replica).id
    cluster.wait_healthy()
    assert read_sessions(cluster, written) == written


def test_prestop_asks_again_when_the_election_is_lost(cluster: ClusterFleet) -> None:
    """Redis drops a manual failover whose election is lost (too few votes in time) after 5 s,
    and lets that replica stand again only 4 x node-timeout after it first stood. Here the
    votes are late: enough other masters are stopped (SIGSTOP) that the rest are no majority,
    until Redis has dropped the first attempt. The pre-stop must ask again, not stop a master
    whose replica never took over (that would cost the shard a failure detection)."""
    written = write_sessions(cluster, "re-elect")
    master = shard_master(cluster, 2)
    [replica] = [n for n in cluster.nodes if n.shard == 2 and n is not master]
    others = [shard_master(cluster, s) for s in range(cluster.shards) if s != 2]
    quorum = (len(others) + 1) // 2 + 1
    # The master itself votes too (its log says "Failover auth granted"): leave it and the
    # others still running short of a quorum.
    silenced = others[: len(others) + 2 - quorum]
    offset = len(replica.proc.log.read_text()) if replica.proc else 0
    with ThreadPoolExecutor(1) as pool:
        try:
            for node in silenced:
                assert node.proc is not None
                node.proc.signal(signal.SIGSTOP)
            handover = pool.submit(cluster.prestop, master)
            wait_until(
                lambda: (
                    replica.proc is not None
                    and "Manual failover timed out" in replica.proc.log.read_text()[offset:]
                ),
                15,
                "the first manual failover dropped",
            )
        finally:
            for node in silenced:
                if node.proc is not None:
                    node.proc.signal(signal.SIGCONT)
        result = handover.result(timeout=60)
    logs = f"{result.stderr}\n{node_logs(master, replica)}"
    assert result.returncode == 0, logs
    assert "CLUSTER FAILOVER again (attempt" in result.stderr, logs
    assert "handed over to" in result.stderr, logs
    assert cluster.myself(master).master == cluster.myself(replica).id
    cluster.wait_healthy()
    assert read_sessions(cluster, written) == written


def test_the_whole_cluster_restarts_with_new_addresses(cluster: ClusterFleet) -> None:
    """Every pod rescheduled at once: every address in every nodes.conf is gone. The start
    script finds the peers again by the hostnames they announce."""
    identities = {n.port: cluster.myself(n).id for n in cluster.nodes}
    for node in cluster.nodes:
        cluster.kill(node)
    for node in cluster.nodes:
        text = node.nodes_conf.read_text()
        node.nodes_conf.write_text(re.sub(r" 127\.0\.0\.1:(\d+)@", r" 127.0.0.2:\1@", text))
    for node in cluster.nodes:
        cluster.start_node(node)
    cluster.wait_answering(cluster.nodes)
    cluster.wait_healthy(40)
    assert {n.port: cluster.myself(n).id for n in cluster.nodes} == identities
    for node in cluster.nodes:
        assert {row.ip for row in cluster.rows(node)} == {"127.0.0.1"}
    again = cluster.bootstrap()
    assert again.returncode == 0, again.stderr
