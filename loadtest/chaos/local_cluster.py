"""Chaos against the local container cluster in cluster mode (`make local-up MODE=cluster`,
local-cluster/compose.cluster.yaml): a Redis Cluster of 3 shards x 1 replica, no Sentinel.

- `kill_redis_master`: one shard's master dies (SIGKILL to its redis-server, from inside the
  container: tini ends the container and the restart policy starts it again, as a kubelet
  restarts a crashed container). The chart's cluster-start.sh, finding itself master in its
  nodes.conf, first promotes its replica, then rejoins as that one's replica with its node ID.
  The action returns once both happened (or fails), saying how long each took. Shards take
  turns: the first kill takes shard 0, the next shard 1, ...
- `reshard`: `redis-cli --cluster reshard` run inside the source master's container moves
  `reshard_slots` slots, keys and all, from the master with the most slots to the one with the
  fewest, under load (a second `reshard` moves them back). Clients see `ASK` while a slot
  migrates and `MOVED` once it has.
- `kill_app`: as in Sentinel mode.
Each action waits first (bounded) for a healthy cluster: every slot served, every master with
an in-sync replica, no slot half-migrated; a shard master killed without a replica in sync
would take its shard's sessions with it (no persistence), which is not the fault under test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from .base import ChaosError
from .cluster_nodes import (
    NODE_NAME,
    SHARDS,
    NodeRow,
    health_problem,
    parse_nodes,
    reshard_pair,
    slot_ranges,
)
from .local import PROJECT_LABEL, LocalCluster, docker

SHARD_LABEL = "sessionfleet.shard"
_ERRORSTAT = re.compile(r"^errorstat_(ASK|MOVED):count=(\d+)", re.MULTILINE)


@dataclass
class LocalRedisCluster(LocalCluster):
    reshard_slots: int = 4000
    ready_timeout: float = 60  # seconds an action waits for a healthy cluster, and to recover
    kills: int = 0  # shard-master kills so far: the next takes shard `kills % SHARDS`

    # --- looking at it -----------------------------------------------------------------------

    def cli(self, host: str, *args: str, timeout: float = 10, stdin: str | None = None) -> str:
        """redis-cli in the node's own container, against its own server ("" if it is down)."""
        return docker(
            "exec",
            *(["-i"] if stdin is not None else []),
            self.container(host),
            "sh",
            "-c",
            'REDISCLI_AUTH=$(cat /secrets/redis-password) exec redis-cli -p 6379 "$@"',
            "redis-cli",
            *args,
            check=False,
            timeout=timeout,
            stdin=stdin,
        ).replace("\r", "")

    def hosts(self) -> list[str]:
        """The cluster's nodes (running or not), by compose service: redis-<shard>-<pod>."""
        names = docker(
            "ps",
            "--all",
            "--filter",
            f"label={PROJECT_LABEL}={self.project}",
            "--filter",
            "label=sessionfleet.role=redis",
            "--format",
            "{{.Names}}",
        ).split()
        services = (name.removeprefix(f"{self.project}_").removesuffix("_1") for name in names)
        return sorted(s for s in services if NODE_NAME.match(s))

    def rows(self, host: str | None = None) -> list[NodeRow]:
        """CLUSTER NODES as `host` sees it (default: the first node that answers)."""
        for candidate in [host] if host else self.hosts():
            text = self.cli(candidate, "cluster", "nodes")
            if text.strip() and not text.startswith("ERR"):
                return parse_nodes(text)
        raise ChaosError("no node of the cluster answers CLUSTER NODES")

    def role(self, host: str) -> str:
        return self.cli(host, "role").split("\n", 1)[0]

    def node_id(self, host: str) -> str:
        return self.cli(host, "cluster", "myid").strip()

    def in_sync(self, host: str) -> bool:
        """A replica linked to its master and not in the middle of a full sync."""
        info = self.cli(host, "info", "replication")
        return "master_link_status:up" in info and "master_sync_in_progress:0" in info

    def shard_master(self, shard: int) -> NodeRow:
        rows = self.rows()
        masters = [r for r in rows if r.is_master and r.slots and r.shard == shard]
        if len(masters) != 1:
            raise ChaosError(f"shard {shard} has {len(masters)} masters with slots")
        return masters[0]

    def health(self) -> str | None:
        """None when the cluster is whole (see `health_problem`) and every replica is in sync,
        as every node says; else what is missing."""
        try:
            rows = self.rows()
        except ChaosError as exc:
            return str(exc)
        problem = health_problem(rows)
        if problem:
            return problem
        for row in rows:
            if row.is_master:
                if "cluster_state:ok" not in self.cli(row.host, "cluster", "info"):
                    return f"{row.host} does not say cluster_state:ok"
            elif not self.in_sync(row.host):
                return f"{row.host} is not in sync with its master"
        return None

    def wait_healthy(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (self.ready_timeout if timeout is None else timeout)
        while (problem := self.health()) is not None:
            if time.monotonic() > deadline:
                raise ChaosError(f"the Redis Cluster is not healthy: {problem}")
            time.sleep(0.5)

    # --- chaos actions -----------------------------------------------------------------------

    def kill_redis_master(self, shard: int | None = None) -> str:
        """A shard master's crash; returns once its replica took over and it is back as that
        replica's replica, in sync, with the node ID it had."""
        shard = self.kills % SHARDS if shard is None else shard
        self.kills += 1
        self.wait_healthy()
        victim = self.shard_master(shard)
        replicas = [r for r in self.rows() if r.master == victim.id and not r.failed]
        if not replicas:
            raise ChaosError(f"{victim.host} has no replica to take over")
        replica = replicas[0]
        self.acting()
        killed = time.monotonic()
        self.crash_redis(victim.host)
        took_over = self._until(lambda: self.role(replica.host) == "master", "take over", replica)
        new_master = self.node_id(replica.host)

        def rejoined() -> bool:
            try:
                me = [r for r in self.rows(victim.host) if "myself" in r.flags]
            except ChaosError:  # not answering yet
                return False
            return (
                bool(me)
                and me[0].id == victim.id
                and me[0].master == new_master
                and self.in_sync(victim.host)
            )

        back = self._until(rejoined, "rejoin as a replica with its node ID", victim)
        return (
            f"killed {victim.host}, master of shard {shard} ({len(victim.slots)} slots; restarted "
            f"by its restart policy): {replica.host} took over after {took_over - killed:.1f} s; "
            f"{victim.host} back as its replica, node ID {victim.id[:8]} kept, in sync after "
            f"{back - killed:.1f} s"
        )

    def crash_redis(self, host: str) -> None:
        """SIGKILL to the node's redis-server, from inside its container (tini, PID 1, exits
        with it; the restart policy restarts the container)."""
        # The exec may die with the container: judged by what the node does next, not by the
        # exit code.
        docker(
            "exec",
            self.container(host),
            "sh",
            "-c",
            "pid=$(REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli -p 6379 info server"
            " | tr -d '\\r' | sed -n 's/^process_id://p')"
            ' && [ -n "$pid" ] && kill -KILL "$pid"',
            check=False,
            timeout=15,
        )

    def reshard(self) -> str:
        """`reshard_slots` slots, with their keys, from the master with the most slots to the
        one with the fewest (redis-cli --cluster reshard), under load."""
        self.wait_healthy()
        source, target = reshard_pair(self.rows())
        count = min(self.reshard_slots, len(source.slots))
        command = (
            "REDISCLI_AUTH=$(cat /secrets/redis-password) exec redis-cli --cluster reshard "
            f"127.0.0.1:6379 --cluster-from {source.id} --cluster-to {target.id} "
            f"--cluster-slots {count} --cluster-yes"
        )
        redirected = self.redirections()
        self.acting()
        started = time.monotonic()
        out = docker("exec", self.container(source.host), "sh", "-c", command, timeout=600)
        took = time.monotonic() - started
        if "[ERR]" in out:
            raise ChaosError(f"redis-cli --cluster reshard: {out[-500:]}")
        after = {r.id: r for r in self.rows()}
        moved = source.slots - after[source.id].slots
        if len(moved) != count or not moved <= after[target.id].slots:
            raise ChaosError(
                f"asked to move {count} slots from {source.host} to {target.host}, "
                f"{len(moved)} left it"
            )
        keys = self.keys_in(target.host, moved)
        self.wait_healthy()
        now = self.redirections()
        asks, moveds = (now[kind] - redirected.get(kind, 0) for kind in ("ASK", "MOVED"))
        return (
            f"moved {count} slots ({slot_ranges(moved)}; {keys} keys there after the move) from "
            f"{source.host} (shard {source.shard}) to {target.host} (shard {target.shard}) in "
            f"{took:.1f} s; the nodes answered {asks} ASK and {moveds} MOVED meanwhile"
        )

    def redirections(self) -> dict[str, int]:
        """ASK and MOVED replies the running nodes answered since they started (INFO
        errorstats), summed."""
        total = {"ASK": 0, "MOVED": 0}
        for host in self.hosts():
            for kind, count in _ERRORSTAT.findall(self.cli(host, "info", "errorstats")):
                total[kind] += int(count)
        return total

    def keys_in(self, host: str, slots: frozenset[int]) -> int:
        """Keys the node holds in `slots` (one redis-cli reading CLUSTER COUNTKEYSINSLOT lines)."""
        script = "".join(f"CLUSTER COUNTKEYSINSLOT {slot}\n" for slot in sorted(slots))
        out = self.cli(host, stdin=script, timeout=60)
        return sum(int(line) for line in out.split() if line.isdigit())

    # --- Sentinel mode only ----------------------------------------------------------------

    def recreate_redis_master_with_new_ip(self) -> str:
        raise ChaosError("cluster mode: no single Redis master (plans: cluster, reshard)")

    def master_node(self) -> str:
        raise ChaosError("cluster mode: no single Redis master's node (plans: cluster, reshard)")

    def upgrade(self) -> str:
        raise ChaosError("cluster mode: no local upgrade action (plans: cluster, reshard)")

    # --- helpers -----------------------------------------------------------------------------

    def _until(self, done: Callable[[], bool], what: str, node: NodeRow) -> float:
        """Polls `done()` until it holds (returns when, monotonic) or `ready_timeout` passes."""
        deadline = time.monotonic() + self.ready_timeout
        while not done():
            if time.monotonic() > deadline:
                raise ChaosError(f"{node.host} did not {what} within {self.ready_timeout:.0f} s")
            time.sleep(0.2)
        return time.monotonic()


def local_backend(project: str) -> LocalCluster:
    """The backend for the project's local cluster: cluster mode where its Redis pods carry a
    shard label (compose.cluster.yaml), else Sentinel mode."""
    sharded = docker(
        "ps",
        "--quiet",
        "--filter",
        f"label={PROJECT_LABEL}={project}",
        "--filter",
        f"label={SHARD_LABEL}",
        check=False,
    )
    return LocalRedisCluster(project=project) if sharded else LocalCluster(project=project)
