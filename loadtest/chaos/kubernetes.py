"""Chaos on a Kubernetes cluster through kubectl (and docker for kind nodes).

Verified only by reading and type checks: no cluster can run on the development machine.
Pods are found by the chart's labels (app.kubernetes.io/instance=<release>, component=app|redis).
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import dataclass

from .base import ChaosBackend, ChaosError

OUT_OF_SERVICE = "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"


def run(*args: str, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run(  # noqa: S603 (fixed programs, arguments built here)
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ChaosError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class KubernetesCluster(ChaosBackend):
    namespace: str = "sessionfleet"
    release: str = "sf"
    context: str = ""
    # After a node loss, taint the node out-of-service so its StatefulSet pod is recreated
    # elsewhere instead of staying Terminating (a kind node never comes back on its own).
    taint_lost_nodes: bool = True

    def kubectl(self, *args: str, timeout: float = 60) -> str:
        context = ["--context", self.context] if self.context else []
        return run("kubectl", *context, "-n", self.namespace, *args, timeout=timeout)

    def pods(self, component: str) -> list[dict[str, object]]:
        selector = (
            f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component={component}"
        )
        items = json.loads(self.kubectl("get", "pods", "-l", selector, "-o", "json"))["items"]
        return [p for p in items if p["status"].get("phase") == "Running"]

    def redis_master_pod(self) -> dict[str, object]:
        for pod in self.pods("redis"):
            role = self.kubectl(
                "exec",
                str(pod["metadata"]["name"]),
                "-c",
                "redis",
                "--",
                "sh",
                "-c",  # type: ignore[index]
                "REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli role | head -n 1",
                timeout=15,
            )
            if role == "master":
                return pod
        raise ChaosError("no Redis pod reports itself master")

    def _delete(self, name: str) -> None:
        # Force: a crash, not a graceful shutdown (no preStop handover).
        self.acting()
        self.kubectl("delete", "pod", name, "--grace-period=0", "--force", "--wait=false")

    def kill_app(self, replica: str = "") -> str:
        pods = self.pods("app")
        if not pods:
            raise ChaosError("no running app pod")
        name = replica or str(random.choice(pods)["metadata"]["name"])  # type: ignore[index]
        self._delete(name)
        return f"deleted app pod {name}"

    def kill_redis_master(self) -> str:
        name = str(self.redis_master_pod()["metadata"]["name"])  # type: ignore[index]
        self._delete(name)
        return f"deleted the Redis master pod {name}"

    def recreate_redis_master_with_new_ip(self) -> str:
        # A deleted pod is rescheduled with a new IP: the same action on Kubernetes.
        return self.kill_redis_master()

    def master_node(self) -> str:
        return str(self.redis_master_pod()["spec"]["nodeName"])  # type: ignore[index]

    def lose_node(self, node: str) -> str:
        provider = self._provider_id(node)
        if not provider.startswith("kind://"):
            raise ChaosError(f"node {node} is not a kind node: stop it with your cloud's tools")
        self.acting()
        run("docker", "stop", "--time", "0", node)  # a kind node is a container of that name
        outcome = f"lost node {node}: stopped its kind container"
        if self.taint_lost_nodes:
            run(
                "kubectl",
                *(["--context", self.context] if self.context else []),
                "taint",
                "node",
                node,
                OUT_OF_SERVICE,
                "--overwrite",
            )
            outcome += ", tainted out-of-service"
        return outcome

    def drain_node(self, node: str) -> str:
        # Evictions respect the chart's PodDisruptionBudgets; the StatefulSet pod waits
        # Pending until the node is uncordoned (restore_node), as in a real maintenance.
        context = ["--context", self.context] if self.context else []
        self.acting()
        run(
            "kubectl",
            *context,
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=240s",
            timeout=300,
        )
        return f"drained node {node}"

    def restore_node(self, node: str) -> str:
        kind_node = self._provider_id(node).startswith("kind://")
        self.acting()
        if kind_node:
            run("docker", "start", node)
        context = ["--context", self.context] if self.context else []
        run("kubectl", *context, "taint", "node", node, f"{OUT_OF_SERVICE}-", check=False)
        run("kubectl", *context, "uncordon", node)
        return f"node {node} back"

    def _provider_id(self, node: str) -> str:
        context = ["--context", self.context] if self.context else []
        return run("kubectl", *context, "get", "node", node, "-o", "jsonpath={.spec.providerID}")
