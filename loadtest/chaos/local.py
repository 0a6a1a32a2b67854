"""Chaos against the local container cluster (local-cluster/compose.yaml), through the docker CLI.

Containers are found by the labels the compose file sets (`sessionfleet.node`,
`sessionfleet.role`) within one compose project, so nothing outside the cluster is touched.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from dataclasses import dataclass

from .base import ChaosBackend, ChaosError

PROJECT_LABEL = "com.docker.compose.project"
NODES = ("a", "b", "c")


def docker(*args: str, check: bool = True, timeout: float = 60, stdin: str | None = None) -> str:
    result = subprocess.run(  # noqa: S603 (the docker CLI on PATH, arguments built here)
        ["docker", *args],  # noqa: S607
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode != 0:
        raise ChaosError(f"docker {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class LocalCluster(ChaosBackend):
    project: str = "sessionfleet-local"
    network: str = ""

    def __post_init__(self) -> None:
        self.network = self.network or f"{self.project}_fleet"

    # --- finding things ----------------------------------------------------------------------

    def containers(
        self, *, node: str | None = None, role: str | None = None, all_: bool = False
    ) -> list[str]:
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if node:
            filters += ["--filter", f"label=sessionfleet.node={node}"]
        if role:
            filters += ["--filter", f"label=sessionfleet.role={role}"]
        names = docker("ps", *(["--all"] if all_ else []), *filters, "--format", "{{.Names}}")
        return sorted(names.split()) if names else []

    def container(self, service: str) -> str:
        return f"{self.project}_{service}_1"

    def redis_role(self, index: int) -> str | None:
        out = docker(
            "exec",
            self.container(f"redis-{index}"),
            "sh",
            "-c",
            "REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli -p 6379 role",
            check=False,
            timeout=10,
        )
        return out.splitlines()[0] if out else None

    def master_index(self) -> int | None:
        """The Redis pod that reports itself master (asked directly); None unless exactly one."""
        masters = [i for i in range(3) if self.redis_role(i) == "master"]
        return masters[0] if len(masters) == 1 else None

    def node_of_redis(self, index: int) -> str:
        return NODES[index]

    def ip_of(self, container: str) -> str:
        info = json.loads(docker("inspect", container))[0]
        return str(info["NetworkSettings"]["Networks"][self.network]["IPAddress"])

    # --- chaos actions -----------------------------------------------------------------------

    def kill_app(self, replica: str = "") -> str:
        """A pod crash: the container is SIGKILLed and restarted."""
        replica = replica or "app-b"
        self._crash(self.container(replica))
        return f"killed {replica} (restarted)"

    def kill_redis_master(self) -> str:
        index = self._require_master()
        self._crash(self.container(f"redis-{index}"))
        return f"killed the Redis master redis-{index} (restarted, empty)"

    def recreate_redis_master_with_new_ip(self) -> str:
        index = self._require_master()
        return self.recreate_redis_pod(index)

    def recreate_redis_pod(self, index: int) -> str:
        """A pod rescheduled: redis and sentinel gone, back empty, at a new address."""
        pod, redis, sentinel = (
            self.container(f"{kind}-{index}") for kind in ("pod", "redis", "sentinel")
        )
        self.acting()
        docker("kill", redis, sentinel)
        old_ip = self.ip_of(pod)
        new_ip = self._free_ip()
        docker("network", "disconnect", self.network, pod)
        docker("network", "connect", "--ip", new_ip, "--alias", f"redis-{index}", self.network, pod)
        docker("start", redis, sentinel)
        return f"recreated redis-{index} pod: {old_ip} -> {new_ip}"

    def master_node(self) -> str:
        return self.node_of_redis(self._require_master())

    def lose_node(self, node: str) -> str:
        """Every container of one node stops at once (no restart: the machine is gone)."""
        victims = self.containers(node=node)
        self.acting()
        docker("kill", *victims)
        return f"lost node {node}: {self._short_names(victims)}"

    def drain_node(self, node: str) -> str:
        """Every container of one node gets SIGTERM and up to 10 s to finish, as evicted pods do."""
        victims = self.containers(node=node)
        self.acting()
        docker("stop", "--time", "10", *victims, timeout=120)
        return f"drained node {node}: {self._short_names(victims)}"

    def restore_node(self, node: str) -> str:
        stopped = self.containers(node=node, all_=True)
        pods = [c for c in stopped if "_pod-" in c]
        self.acting()
        docker("start", *pods)  # the network namespace first, as a kubelet would
        docker("start", *[c for c in stopped if c not in pods])
        return f"node {node} back"

    def upgrade(self) -> str:
        """What `helm upgrade` does on Kubernetes: app replicas replaced one at a time (SIGTERM,
        gunicorn's graceful stop; the next only once this one is healthy), then Redis nodes one
        at a time, the master last, each running the pod's pre-stop first, as a kubelet does:
        the master hands over before it stops."""
        self.restart_app()
        master = self._require_master()
        for index in [i for i in range(3) if i != master] + [master]:
            redis, sentinel, watch = (
                self.container(f"{kind}-{index}") for kind in ("redis", "sentinel", "watch")
            )
            docker("exec", redis, "sh", "/config/redis-prestop.sh", check=False, timeout=40)
            docker("stop", "--time", "10", redis, sentinel, watch, timeout=60)
            docker("start", redis, sentinel, watch)
            self.wait_converged(timeout=90)
        return f"rolled app-a, app-b, app-c, then redis nodes, the master redis-{master} last"

    def restart_app(self) -> str:
        """App replicas replaced one at a time: SIGTERM (gunicorn's graceful stop), the next
        only once this one is healthy again."""
        self.acting()
        for replica in ("app-a", "app-b", "app-c"):
            container = self.container(replica)
            docker("stop", "--time", "25", container, timeout=60)
            docker("start", container)
            self._wait_healthy(container)
        return "restarted app-a, app-b, app-c one at a time"

    # --- helpers -----------------------------------------------------------------------------

    def _wait_healthy(self, container: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while docker("inspect", "--format", "{{.State.Health.Status}}", container) != "healthy":
            if time.monotonic() > deadline:
                raise ChaosError(f"{container} not healthy {timeout:.0f} s after its restart")
            time.sleep(0.5)

    def _short_names(self, containers: list[str]) -> str:
        return ", ".join(c.removeprefix(self.project + "_") for c in containers)

    def _require_master(self, timeout: float = 30) -> int:
        # A failover may be under way (a previous action, or a spurious one on a busy host):
        # wait for it to settle, bounded, instead of failing the action.
        deadline = time.monotonic() + timeout
        while (index := self.master_index()) is None:
            if time.monotonic() > deadline:
                raise ChaosError("no single Redis master to act on")
            time.sleep(1)
        return index

    def _crash(self, container: str) -> None:
        # SIGKILL, then start again at once, as a kubelet restarts a crashed container (the
        # restart policy would not: Docker treats `docker kill` as a deliberate stop).
        self.acting()
        docker("kill", container)
        docker("start", container)

    def _free_ip(self) -> str:
        net = json.loads(docker("network", "inspect", self.network))[0]
        subnet = ipaddress.ip_network(net["IPAM"]["Config"][0]["Subnet"])
        used = {
            ipaddress.ip_address(c["IPv4Address"].split("/")[0]) for c in net["Containers"].values()
        }
        hosts = list(subnet.hosts())
        for candidate in hosts[len(hosts) // 2 :]:  # the half the compose ip_range leaves free
            if candidate not in used:
                return str(candidate)
        raise ChaosError("no free address left in the fleet network")

    def sentinel_says(self, index: int) -> str:
        return docker(
            "exec",
            self.container(f"sentinel-{index}"),
            "sh",
            "-c",
            "REDISCLI_AUTH=$(cat /secrets/sentinel-password) redis-cli -p 26379 "
            "sentinel get-master-addr-by-name sessionfleet | head -n 1",
            check=False,
            timeout=10,
        )

    def converged(self, replicas: int = 2) -> int | None:
        """The master's index when exactly one node is master, `replicas` replicas follow it
        directly (no chain) and every running Sentinel names it; else None."""
        index = self.master_index()
        if index is None:
            return None
        info = docker(
            "exec",
            self.container(f"redis-{index}"),
            "sh",
            "-c",
            "REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli -p 6379 info replication",
            check=False,
            timeout=10,
        )
        if info.count("state=online") < replicas:
            return None
        running = [i for i in range(3) if self.container(f"sentinel-{i}") in self.containers()]
        if any(self.sentinel_says(i) != f"redis-{index}" for i in running):
            return None
        return index

    def wait_converged(self, timeout: float = 90, replicas: int = 2) -> int:
        """Wait until `converged()`; returns the master's index."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            index = self.converged(replicas)
            if index is not None:
                return index
            time.sleep(1)
        raise ChaosError(f"Redis did not converge to one master with {replicas} replicas")
