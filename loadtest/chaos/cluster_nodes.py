"""A Redis Cluster's CLUSTER NODES, read for the chaos of the local cluster's cluster mode
(`local_cluster.py`): the rows, whether the cluster is whole, which masters a reshard takes
from and gives to. Pure functions, no docker."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .base import ChaosError

SHARDS = 3
SLOTS = 16384
# A cluster node's name as compose.cluster.yaml gives it (its pod's): redis-<shard>-<pod>.
NODE_NAME = re.compile(r"^redis-(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One line of CLUSTER NODES."""

    id: str
    host: str  # the announced hostname (the compose service), else the IP
    flags: str
    master: str  # the master's ID, "-" for a master
    link: str
    slots: frozenset[int]
    migrating: bool  # a slot of it is being migrated or imported

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failed(self) -> bool:
        return "fail" in self.flags or "noaddr" in self.flags

    @property
    def shard(self) -> int | None:
        match = NODE_NAME.match(self.host)
        return int(match.group(1)) if match else None


def parse_nodes(text: str) -> list[NodeRow]:
    """CLUSTER NODES: `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch>
    <link> <slot>...`; a slot is `n`, `n-m` or `[n->-id]` / `[n-<-id]` (migrating, importing)."""
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1]
        host = address.split(",")[1] if "," in address else address.split("@")[0].rsplit(":", 1)[0]
        slots: set[int] = set()
        migrating = False
        for entry in fields[8:]:
            if entry.startswith("["):
                migrating = True
                continue
            low, _, high = entry.partition("-")
            slots.update(range(int(low), int(high or low) + 1))
        rows.append(
            NodeRow(fields[0], host, fields[2], fields[3], fields[7], frozenset(slots), migrating)
        )
    return rows


def reshard_pair(rows: Iterable[NodeRow]) -> tuple[NodeRow, NodeRow]:
    """(from, to) for a reshard: the live master with the most slots gives to the one with the
    fewest (ties: the lower shard first), so a second reshard undoes the first."""
    masters = sorted(
        (r for r in rows if r.is_master and not r.failed),
        key=lambda r: (r.shard if r.shard is not None else SHARDS, r.host),
    )
    if len(masters) < 2:
        raise ChaosError(f"resharding needs two masters, found {len(masters)}")
    source = max(masters, key=lambda r: len(r.slots))  # max/min keep the first of equals
    target = min((r for r in masters if r is not source), key=lambda r: len(r.slots))
    return source, target


def health_problem(rows: list[NodeRow], shards: int = SHARDS) -> str | None:
    """Why the cluster, as one node's CLUSTER NODES shows it, is not whole (None if it is):
    every slot served by a live master, one per shard, each with a live, connected replica,
    and no slot half-migrated."""
    masters = [r for r in rows if r.is_master and r.slots]
    failed = [r.host for r in rows if r.failed]
    if failed:
        return f"failed: {', '.join(sorted(failed))}"
    covered = sum(len(r.slots) for r in masters)
    if covered != SLOTS:
        return f"{covered} of {SLOTS} slots served"
    if len(masters) != shards:
        return f"{len(masters)} masters with slots, not {shards}"
    for master in masters:
        replicas = [r for r in rows if r.master == master.id and r.link == "connected"]
        if not replicas:
            return f"{master.host} has no connected replica"
        if any(r.shard != master.shard for r in replicas):
            return f"{master.host} has a replica of another shard"
    migrating = [r.host for r in rows if r.migrating]
    if migrating:
        return f"slots being migrated on {', '.join(migrating)}"
    return None


def slot_ranges(slots: frozenset[int]) -> str:
    """1,2,3,7 -> '1-3,7'."""
    ranges: list[str] = []
    for slot in sorted(slots):
        if ranges and slot == int(ranges[-1].split("-")[-1]) + 1:
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{slot}"
        else:
            ranges.append(str(slot))
    if len(ranges) > 3:
        return f"{','.join(ranges[:3])} and {len(ranges) - 3} more ranges"
    return ",".join(ranges)
