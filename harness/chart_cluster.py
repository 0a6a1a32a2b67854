"""A Redis Cluster on loopback run by the chart's cluster-mode scripts, as rendered in its
ConfigMap: every node started by cluster-start.sh, the cluster made and grown by
cluster-bootstrap.sh (what the hook Job runs), masters handed over by cluster-prestop.sh.

Each node plays a pod: its own data directory (the pod's volume, nodes.conf included), the
announced name 127.0.0.1 (the pod's DNS name on Kubernetes) and SF_POD_IP 127.0.0.1. Every
process is started here and stopped here, by PID.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import redis

from .ha_cluster import chart_files
from .processes import Proc, wait_until

CLUSTER_VALUES = {"redis": {"mode": "cluster"}}


def cluster_port() -> int:
    """A free port whose cluster-bus port (+10000) is free too and below 65536."""
    for _ in range(200):
        port = random.randint(20000, 29999)  # a port, not a secret
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class NodeRow(NamedTuple):
    """One line of CLUSTER NODES."""

    id: str
    address: str  # ip:port@cport[,hostname...]
    flags: str
    master: str  # the master's ID, "-" for a master
    slots: int
    link: str

    @property
    def ip(self) -> str:
        return self.address.split("@")[0].rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.address.split("@")[0].rsplit(":", 1)[1])


def parse_nodes(text: str) -> list[NodeRow]:
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8 or fields[0] == "vars":
            continue
        slots = 0
        for entry in fields[8:]:
            if entry.startswith("["):
                continue
            low, _, high = entry.partition("-")
            slots += int(high) - int(low) + 1 if high else 1
        rows.append(NodeRow(fields[0], fields[1], fields[2], fields[3], slots, fields[7]))
    return rows


@dataclass
class ClusterNode:
    shard: int
    index: int  # 0: the shard's first master
    port: int
    datadir: Path
    proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nodes_conf(self) -> Path:
        return self.datadir / "nodes.conf"


@dataclass
class ClusterFleet:
    workdir: Path
    shards: int = 3
    replicas_per_shard: int = 1
    node_timeout_ms: int = 3000
    nodes: list[ClusterNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.password = secrets.token_urlsafe(16)
        self.secret = self.workdir / "redis-password"
        self.secret.write_text(self.password)
        self.files = chart_files(self.workdir / "config", CLUSTER_VALUES)
        for shard in range(self.shards):
            self._add_shard_nodes(shard)

    def _add_shard_nodes(self, shard: int) -> list[ClusterNode]:
        added = []
        for index in range(self.replicas_per_shard + 1):
            datadir = self.workdir / f"shard-{shard}-{index}"
            datadir.mkdir(parents=True, exist_ok=True)
            added.append(ClusterNode(shard, index, cluster_port(), datadir))
        self.nodes += added
        return added

    # --- the scripts, as a pod and the hook Job run them ---------------------------------

    def node_env(self, node: ClusterNode) -> dict[str, str]:
        return {
            "SF_ANNOUNCE_HOST": "127.0.0.1",
            "SF_POD_IP": "127.0.0.1",
            "SF_BIND": "127.0.0.1",
            "SF_REDIS_PORT": str(node.port),
            "SF_CONFIG_DIR": str(self.files),
            "SF_DATA_DIR": str(node.datadir),
            "SF_REDIS_PASSWORD_FILE": str(self.secret),
            "SF_CLUSTER_NODE_TIMEOUT": str(self.node_timeout_ms),
            # As the chart sets it: room for a second election after a lost one.
            "SF_HANDOVER_SECONDS": str(4 * self.node_timeout_ms // 1000 + 8),
        }

    def start_node(self, node: ClusterNode) -> None:
        node.proc = Proc(
            ["sh", str(self.files / "cluster-start.sh")],
            node.datadir / "redis.log",
            self.node_env(node),
        )

    def wait_answering(self, nodes: list[ClusterNode], timeout: float = 20) -> None:
        for node in nodes:
            wait_until(lambda n=node: self.answers(n), timeout, f"node :{node.port}")  # type: ignore[misc]

    def answers(self, node: ClusterNode) -> bool:
        if node.proc is not None and node.proc.popen.poll() is not None:
            raise RuntimeError(f"node :{node.port} exited:\n{node.proc.tail()}")
        with self.client(node) as client:
            return bool(client.ping())

    def start(self) -> None:
        for node in self.nodes:
            self.start_node(node)
        self.wait_answering(self.nodes)

    def grow(self) -> list[ClusterNode]:
        """Start one more shard's pods (fresh, outside the cluster), as `helm upgrade` with
        shards + 1 does; the bootstrap then adds them."""
        added = self._add_shard_nodes(self.shards)
        self.shards += 1
        for node in added:
            self.start_node(node)
        self.wait_answering(added)
        return added

    def shard_list(self, shards: int | None = None) -> str:
        """SF_SHARDS as the chart renders it for the Job: shards by spaces, pods by commas."""
        count = self.shards if shards is None else shards
        return " ".join(
            ",".join(n.address for n in self.nodes if n.shard == shard) for shard in range(count)
        )

    def bootstrap(
        self, shards: int | None = None, timeout: int = 60, *, check_only: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """cluster-bootstrap.sh as the Jobs run it: after install and upgrade, or with
        `check_only` before a rollback (SF_CHECK_ONLY)."""
        env = {
            **os.environ,
            "SF_SHARDS": self.shard_list(shards),
            "SF_REDIS_PASSWORD_FILE": str(self.secret),
            "SF_BOOTSTRAP_TIMEOUT": str(timeout),
            "SF_CHECK_ONLY": "yes" if check_only else "no",
        }
        return subprocess.run(
            ["sh", str(self.files / "cluster-bootstrap.sh")],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )

    def prestop(self, node: ClusterNode) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(self.files / "cluster-prestop.sh")],
            env={**os.environ, **self.node_env(node)},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def kill(self, node: ClusterNode, sig: int = signal.SIGKILL) -> None:
        assert node.proc is not None
        node.proc.signal(sig)
        node.proc.popen.wait(10)
        node.proc.stop()
        node.proc = None

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                node.proc.stop()

    # --- looking at it ---------------------------------------------------------------------

    def client(self, node: ClusterNode) -> redis.Redis:
        return redis.Redis(
            port=node.port,
            password=self.password,
            socket_timeout=2,
            socket_connect_timeout=1,
            decode_responses=True,
        )

    def cluster_client(self) -> redis.RedisCluster:
        return redis.RedisCluster(
            startup_nodes=[redis.cluster.ClusterNode("127.0.0.1", n.port) for n in self.nodes],
            password=self.password,
            socket_timeout=2,
            decode_responses=True,
        )

    def rows(self, node: ClusterNode) -> list[NodeRow]:
        """CLUSTER NODES as `node` sees it."""
        with self.client(node) as client:
            return parse_nodes(client.execute_command("CLUSTER", "NODES"))

    def myself(self, node: ClusterNode) -> NodeRow:
        [row] = [r for r in self.rows(node) if "myself" in r.flags]
        return row

    def topology(self) -> dict[int, tuple[str, str, str, int, int]]:
        """Per node port: its ID, role, master ID, slots and config epoch, as it says itself."""
        result = {}
        for node in self.nodes:
            with self.client(node) as client:
                epoch = int(
                    client.execute_command("CLUSTER", "INFO")
                    .split("cluster_my_epoch:")[1]
                    .split()[0]
                )
            me = self.myself(node)
            role = "master" if "master" in me.flags else "replica"
            result[node.port] = (me.id, role, me.master, me.slots, epoch)
        return result

    def check(self) -> subprocess.CompletedProcess[str]:
        """`redis-cli --cluster check`, the same check the bootstrap ends with."""
        return subprocess.run(
            ["redis-cli", "--cluster", "check", self.nodes[0].address],
            env={**os.environ, "REDISCLI_AUTH": self.password},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def healthy(self) -> bool:
        result = self.check()
        if result.returncode != 0 or "[ERR]" in result.stdout or "[WARNING]" in result.stdout:
            return False
        for node in self.nodes:
            try:
                with self.client(node) as client:
                    info = client.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                return False
            if "cluster_state:ok" not in info:
                return False
        return True

    def wait_healthy(self, timeout: float = 30) -> None:
        try:
            wait_until(self.healthy, timeout, "a healthy cluster")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.check().stdout}") from None
