"""A Redis Cluster of real `redis-server --cluster-enabled yes` processes on loopback: N
shards of a master and its replicas, made with `redis-cli --cluster create`, with the knobs
the chart sets (no reads while the cluster is down; no `min-replicas-to-write`: see
docs/redis-cluster.md) and a short node timeout so a
failover takes seconds, not the production default's tens of seconds."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .processes import RedisServer, free_port, wait_until

NODE_TIMEOUT_MS = 1000
SLOTS = 16384


@dataclass
class ClusterNode:
    server: RedisServer
    bus_port: int
    workdir: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)


def _server(workdir: Path, port: int, bus_port: int) -> RedisServer:
    return RedisServer(
        workdir,
        port,
        "--cluster-enabled",
        "yes",
        "--cluster-port",
        str(bus_port),
        "--cluster-config-file",
        "nodes.conf",  # in the server's --dir: a restart keeps its node ID
        "--cluster-node-timeout",
        str(NODE_TIMEOUT_MS),
        "--cluster-allow-reads-when-down",
        "no",
    )


class RedisCluster:
    def __init__(self, workdir: Path, shards: int = 3, replicas: int = 1) -> None:
        self.workdir = workdir
        self.nodes: list[ClusterNode] = []
        try:
            for i in range(shards * (1 + replicas)):
                port, bus = free_port(), free_port()
                node_dir = workdir / f"node-{i}"
                self.nodes.append(ClusterNode(_server(node_dir, port, bus), bus, node_dir))
            self._create(shards, replicas)
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _create(self, shards: int, replicas: int) -> None:
        """What `redis-cli --cluster create` does, for any number of shards (it wants 3 or
        more): shard i is master i with its slots, and the replicas that follow it."""
        masters = self.nodes[:shards]
        for i, master in enumerate(masters):
            client = master.client()
            client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
            first, last = i * SLOTS // shards, (i + 1) * SLOTS // shards - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        hub = self.nodes[0]
        for node in self.nodes[1:]:
            node.client().execute_command("CLUSTER", "MEET", "127.0.0.1", hub.port, hub.bus_port)
        wait_until(self._all_met, 30, "every node to know every other")
        for i, replica in enumerate(self.nodes[shards:]):
            master_id = masters[i % shards].client().execute_command("CLUSTER", "MYID")
            replica.client().execute_command("CLUSTER", "REPLICATE", master_id.decode())

    def _all_met(self) -> bool:
        for node in self.nodes:
            known = node.client().execute_command("CLUSTER", "NODES").decode().splitlines()
            if len(known) != len(self.nodes) or any("handshake" in line for line in known):
                return False
        return True

    @property
    def startup_nodes(self) -> str:
        return ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def node(self, port: int) -> ClusterNode:
        return next(n for n in self.nodes if n.port == port)

    def shards(self, via: ClusterNode | None = None) -> list[tuple[ClusterNode, list[ClusterNode]]]:
        """(master, its replicas) of each shard that owns slots, as `via` (any live node) sees
        them."""
        out = []
        for slots, nodes in self._shards(via):
            if slots:
                masters = [self.node(int(n[b"port"])) for n in nodes if n[b"role"] == b"master"]
                replicas = [self.node(int(n[b"port"])) for n in nodes if n[b"role"] == b"replica"]
                out.append((masters[0], replicas))
        return out

    def _shards(self, via: ClusterNode | None) -> list[tuple[list[int], list[dict[bytes, Any]]]]:
        asking = via or next(n for n in self.nodes if n.server.proc.popen.poll() is None)
        reply = asking.client().execute_command("CLUSTER", "SHARDS")
        return [(shard[b"slots"], shard[b"nodes"]) for shard in reply]

    def slot_of(self, key: str) -> int:
        return int(self.nodes[0].client().execute_command("CLUSTER", "KEYSLOT", key))

    def shard_of(self, key: str) -> tuple[ClusterNode, list[ClusterNode]]:
        slot = self.slot_of(key)
        for slots, nodes in self._shards(None):
            if any(a <= slot <= b for a, b in zip(slots[::2], slots[1::2], strict=True)):
                master = next(n for n in nodes if n[b"role"] == b"master")
                replicas = [self.node(int(n[b"port"])) for n in nodes if n[b"role"] == b"replica"]
                return self.node(int(master[b"port"])), replicas
        raise LookupError(f"no shard owns slot {slot}")

    def healthy(self, replicated: bool = True) -> bool:
        """Every live node says the cluster is ok, every replica is linked to its master and
        (`replicated`) every master has a replica linked (writes need one), as every node
        sees it."""
        for node in self.nodes:
            if node.server.proc.popen.poll() is not None:
                continue
            try:
                client = node.client()
                info = client.execute_command("CLUSTER", "INFO").decode()
                if "cluster_state:ok" not in info:
                    return False
                role = client.info("replication")
                if role["role"] == "slave" and role.get("master_link_status") != "up":
                    return False
                if role["role"] == "master" and replicated and not role["connected_slaves"]:
                    return False
                if replicated and not all(replicas for _, replicas in self.shards(via=node)):
                    return False  # gossip has yet to tell this node who replicates whom
            except redis.RedisError:
                return False
        return True

    def wait_healthy(self, timeout: float = 30, replicated: bool = True) -> None:
        wait_until(lambda: self.healthy(replicated), timeout, "a healthy Redis Cluster")

    def kill(self, node: ClusterNode) -> None:
        node.server.proc.signal(signal.SIGKILL)
        node.server.proc.popen.wait(5)

    def restart(self, node: ClusterNode) -> None:
        """Start a stopped node again on its port, with its nodes.conf: it rejoins."""
        node.server = _server(node.workdir, node.port, node.bus_port)

    def flush(self) -> None:
        for master, _ in self.shards():
            master.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.server.stop()


def wait_for_master(
    cluster: RedisCluster, replicas: list[ClusterNode], timeout: float = 20
) -> None:
    """Until one of a dead master's `replicas` was promoted (its shard failed over) and the
    cluster is ok again (the new master may have no replica yet)."""
    deadline = time.monotonic() + timeout

    def promoted() -> bool:
        return any(r.client().info("replication")["role"] == "master" for r in replicas)

    wait_until(promoted, timeout, "promotion")
    cluster.wait_healthy(max(1.0, deadline - time.monotonic()), replicated=False)
