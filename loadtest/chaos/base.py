"""What a chaos backend can do. The same scenario files drive the local container cluster
(`local.py`) and a Kubernetes cluster (`kubernetes.py`)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod


class ChaosError(RuntimeError):
    """An action could not be carried out (the run reports it; it is not a session anomaly)."""


class ChaosBackend(ABC):
    """Each action returns a one-line description of what it did, for the run's event log.

    An action calls `acting()` just before its first step that changes the system (after any
    look-ups, such as which pod is the master): the run stamps the event's start there.
    """

    acted_at: float | None = None  # epoch seconds, set by `acting()`

    def acting(self) -> None:
        if self.acted_at is None:
            self.acted_at = time.time()

    @abstractmethod
    def kill_app(self, replica: str = "") -> str:
        """One app replica dies (a pod kill); it comes back by itself."""

    @abstractmethod
    def kill_redis_master(self) -> str:
        """The Redis master's container dies; Sentinel must fail over. (Redis Cluster: one
        shard's master; its replica must take over.)"""

    @abstractmethod
    def recreate_redis_master_with_new_ip(self) -> str:
        """The master's pod is replaced: back empty, at a new IP address."""

    @abstractmethod
    def master_node(self) -> str:
        """The node the Redis master runs on (losing it costs a failover too)."""

    def node_to_lose(self) -> str:
        """The node a node loss or drain takes: the master's, unless it must be spared."""
        return self.master_node()

    @abstractmethod
    def lose_node(self, node: str) -> str:
        """A whole node disappears: its app replica, Redis and Sentinel at once."""

    @abstractmethod
    def drain_node(self, node: str) -> str:
        """A node is taken out for maintenance: its pods are stopped gracefully (SIGTERM)."""

    @abstractmethod
    def restore_node(self, node: str) -> str:
        """A lost node comes back."""

    def reshard(self) -> str:
        """Redis Cluster only: slots, with their keys, moved from one shard to another under
        load."""
        raise ChaosError(f"{type(self).__name__} cannot move slots")

    @abstractmethod
    def upgrade(self) -> str:
        """A zero-downtime upgrade under load: app replicas replaced one by one, Redis nodes
        restarted one by one, the master handing over."""

    def restart_app(self) -> str:
        """A rolling restart of the app alone (what an app-only upgrade does to its pods): each
        replica replaced in turn, Redis untouched, so any request it fails is a pod's
        start or stop."""
        raise ChaosError(f"{type(self).__name__} cannot roll the app alone")

    def grow_shards(self) -> str:
        """Redis Cluster only: one shard more, slots moved onto it under load."""
        raise ChaosError(f"{type(self).__name__} cannot add shards")

    def app_replicas(self) -> tuple[int, int] | None:
        """(desired, ready) app replicas, for the report's replicas-over-time; None where the
        backend has no such count."""
        return None

    def cleanup(self) -> list[str]:
        """Undo whatever a fault left behind (a cordon, a taint, a stopped node); called on
        every way out of a run, so it must be safe to call twice. Returns what it did."""
        return []
