"""Chaos on any Kubernetes cluster, through kubectl against an explicit kube context.

What each fault really does (docs/loadtest.md has the RBAC it needs):
- `kill_app`: the app's gunicorn is told to quit at once (SIGQUIT: its workers die with their
  requests in flight; no pre-stop, no drain); the kubelet restarts the container.
- `kill_redis_master`: the master's redis-server exits on the spot (SHUTDOWN NOSAVE NOW FORCE:
  no save, no planned handover: the pre-stop only runs when Kubernetes stops a pod; a
  force-deleted pod still runs it); the kubelet restarts it, empty; Sentinel must fail over.
  In cluster mode (`redis.mode: cluster`): one shard's master, and its replica takes over.
- `recreate_redis_master_with_new_ip`: the same crash, then the pod is force-deleted, so it
  comes back elsewhere or at least at a new address.
- `lose_node`: with a node-loss command (e.g. your cloud's "stop instance"), that command; on
  kind, its node container is stopped; anywhere else it is emulated: the node is cordoned and
  tainted out-of-service, and every pod of this release on it crashes (as above) and is
  force-deleted, so its pods are gone at once and come back only elsewhere. (What an emulation
  cannot do: make the node's addresses stop answering; clients get connection resets.)
- `drain_node`: `kubectl drain` (evictions respect the PodDisruptionBudgets; pre-stops run:
  the planned handover).
- `upgrade`: `helm upgrade` to another app image tag and a Redis setting changed (Sentinel's
  failover timeout; in cluster mode the node timeout): the app Deployment and the Redis
  StatefulSets roll (each master hands over when its turn comes).
- `grow_shards` (cluster mode): `helm upgrade` with one shard more; the post-upgrade Job
  adds its pods to the cluster and moves a share of the slots, keys and all, onto it.

Safety: every change that outlives the action (a cordon, a taint, a stopped node) is recorded
before it is made and undone by `cleanup()`, which the run calls on every way out (end, error,
Ctrl-C). After each fault the backend waits for the cluster to recover (nodes Ready, the app
Deployment and the Redis StatefulSet fully rolled out and ready) before the next one.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from .base import ChaosBackend, ChaosError
from .helm import Helm

OUT_OF_SERVICE = "node.kubernetes.io/out-of-service=nodeshutdown:NoExecute"
REDIS_CLI = "REDISCLI_AUTH=$(cat /secrets/redis-password) redis-cli -p 6379"
SENTINEL_CLI = "REDISCLI_AUTH=$(cat /secrets/sentinel-password) redis-cli -p 26379"


def run(*args: str, timeout: float = 60, check: bool = True) -> str:
    result = subprocess.run(  # noqa: S603 (fixed programs, arguments built here)
        list(args), capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise ChaosError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


@dataclass
class KubernetesCluster(ChaosBackend):
    context: str = ""
    namespace: str = "sessionfleet"
    release: str = "sf"
    # Shell commands with {node}: how to really lose and get back a node on your cluster.
    node_loss_command: str = ""
    node_restore_command: str = ""
    upgrade_image_tag: str = ""
    # Nodes never lost (where the load reaches the cluster: losing them measures the way in,
    # not the sessions).
    spare_nodes: list[str] = field(default_factory=list)
    recover_timeout: float = 300.0
    # What is to undo: (kind, node) recorded before acting, removed once undone.
    faults: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.context:
            raise ChaosError(
                "the Kubernetes chaos backend needs an explicit kube context (--chaos-context, "
                "KUBE_CONTEXT): it never acts on whatever context is current"
            )

    # --- kubectl -----------------------------------------------------------------------------

    def kubectl(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        return run("kubectl", "--context", self.context, *args, timeout=timeout, check=check)

    def namespaced(self, *args: str, timeout: float = 60, check: bool = True) -> str:
        return self.kubectl("-n", self.namespace, *args, timeout=timeout, check=check)

    def pods(self, component: str, node: str | None = None) -> list[dict[str, Any]]:
        selector = (
            f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component={component}"
        )
        items = json.loads(self.namespaced("get", "pods", "-l", selector, "-o", "json"))["items"]
        running = [p for p in items if p["status"].get("phase") == "Running"]
        return [p for p in running if node is None or p["spec"].get("nodeName") == node]

    def exec(self, pod: str, container: str, script: str, timeout: float = 15) -> str:
        return self.namespaced(
            "exec", pod, "-c", container, "--", "sh", "-c", script, timeout=timeout
        )

    def redis_master_pod(self) -> dict[str, Any]:
        for pod in self.pods("redis"):
            role = self.exec(pod["metadata"]["name"], "redis", f"{REDIS_CLI} role | head -n 1")
            if role == "master":
                return pod
        raise ChaosError("no Redis pod reports itself master")

    # --- crashes -------------------------------------------------------------------------------

    def _crash_app(self, pod: str) -> None:
        self.exec(pod, "app", "kill -QUIT 1")

    def _crash_redis(self, pod: str, *, with_sentinel: bool = False) -> None:
        # The connection drops as the server exits: a non-zero exit here is the crash working.
        targets = [("redis", REDIS_CLI)] + ([("sentinel", SENTINEL_CLI)] if with_sentinel else [])
        for container, cli in targets:
            self.namespaced(
                "exec",
                pod,
                "-c",
                container,
                "--",
                "sh",
                "-c",
                f"{cli} SHUTDOWN NOSAVE NOW FORCE",
                timeout=15,
                check=False,
            )

    def _force_delete(self, pod: str) -> None:
        self.namespaced("delete", "pod", pod, "--grace-period=0", "--force", "--wait=false")

    # --- actions -------------------------------------------------------------------------------

    def kill_app(self, replica: str = "") -> str:
        pods = self.pods("app")
        if not pods:
            raise ChaosError("no running app pod")
        name = replica or str(random.choice(pods)["metadata"]["name"])
        self.acting()
        self._crash_app(name)
        self.wait_recovered()
        return f"crashed app pod {name} (gunicorn quit at once; restarted by the kubelet)"

    def kill_redis_master(self) -> str:
        name = str(self.redis_master_pod()["metadata"]["name"])
        self.acting()
        self._crash_redis(name)
        self.wait_recovered()
        return f"crashed the Redis master in {name} (no handover; restarted empty)"

    def recreate_redis_master_with_new_ip(self) -> str:
        pod = self.redis_master_pod()
        name, ip = str(pod["metadata"]["name"]), pod["status"].get("podIP")
        self.acting()
        self._crash_redis(name)
        self._force_delete(name)
        self.wait_recovered()
        return f"crashed and force-deleted the Redis master pod {name} (was {ip})"

    def master_node(self) -> str:
        return str(self.redis_master_pod()["spec"]["nodeName"])

    def node_to_lose(self) -> str:
        master = self.master_node()
        if master not in self.spare_nodes:
            return master
        others = [p["spec"]["nodeName"] for p in self.pods("redis")]
        candidates = [n for n in others if n not in self.spare_nodes]
        if not candidates:
            raise ChaosError(
                f"every node with a Redis pod is spared ({', '.join(self.spare_nodes)})"
            )
        return str(candidates[0])

    def lose_node(self, node: str) -> str:
        if self.node_loss_command:
            self.faults.append(("stopped", node))
            self.acting()
            run("sh", "-c", self.node_loss_command.format(node=shlex.quote(node)), timeout=300)
            return f"lost node {node}: ran the node-loss command"
        if self._provider_id(node).startswith("kind://"):
            self.faults.append(("kind", node))
            self.acting()
            run("docker", "stop", "--time", "0", node)  # a kind node is a container of that name
            self._taint(node)
            return f"lost node {node}: stopped its kind container, tainted out-of-service"
        self.faults.append(("emulated", node))
        self.acting()
        self.kubectl("cordon", node)
        self._taint(node)
        victims = []
        for pod in self.pods("redis", node):
            self._crash_redis(pod["metadata"]["name"], with_sentinel=True)
            victims.append(pod["metadata"]["name"])
        for pod in self.pods("app", node):
            self._crash_app(pod["metadata"]["name"])
            victims.append(pod["metadata"]["name"])
        for name in victims:
            self._force_delete(name)
        return (
            f"lost node {node} (emulated: cordoned, tainted out-of-service, crashed and "
            f"force-deleted {', '.join(victims) or 'no pod of this release'})"
        )

    def drain_node(self, node: str) -> str:
        self.faults.append(("cordoned", node))
        self.acting()
        self.kubectl(
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--timeout=240s",
            timeout=300,
        )
        return f"drained node {node}"

    def restore_node(self, node: str) -> str:
        self.acting()
        undone = self._undo(node)
        self.wait_recovered()
        return f"node {node} back ({undone})"

    def upgrade(self) -> str:
        """`helm upgrade` during the load: a new app image (the Deployment rolls) and a Redis
        setting changed (the StatefulSets roll, each master handing over as its turn comes)."""
        if not self.upgrade_image_tag:
            raise ChaosError("the upgrade plan needs --upgrade-image-tag (an image the nodes have)")
        helm = Helm(context=self.context, namespace=self.namespace, release=self.release)
        redis = helm.values()["redis"]
        if redis.get("mode") == "cluster":
            name, was = "node-timeout", int(redis["cluster"]["nodeTimeoutMs"])
            changed: dict[str, Any] = {"cluster": {"nodeTimeoutMs": was + 1}}
        else:
            name, was = "Sentinel failover-timeout", int(redis["sentinel"]["failoverTimeout"])
            changed = {"sentinel": {"failoverTimeout": was + 1}}
        values = {"image": {"tag": self.upgrade_image_tag}, "redis": changed}
        self.acting()
        helm.upgrade(values, reuse_values=True, timeout_s=int(self.recover_timeout))
        self.wait_recovered()
        return (
            f"helm upgrade ({helm.engine}): app image tag {self.upgrade_image_tag}, {name} "
            f"{was} -> {was + 1} ms; both rolled out"
        )

    def grow_shards(self) -> str:
        """`helm upgrade` with one shard more, during the load (cluster mode): the new shard's
        pods start, the post-upgrade Job adds them and rebalances slots onto the new master."""
        helm = Helm(context=self.context, namespace=self.namespace, release=self.release)
        redis = helm.values()["redis"]
        if redis.get("mode") != "cluster":
            raise ChaosError("grow_shards needs the chart's cluster mode (redis.mode: cluster)")
        shards = int(redis["cluster"]["shards"])
        self.acting()
        values = {"redis": {"cluster": {"shards": shards + 1}}}
        helm.upgrade(values, reuse_values=True, timeout_s=int(self.recover_timeout))
        self.wait_recovered()
        return f"helm upgrade ({helm.engine}): {shards} -> {shards + 1} shards, slots rebalanced"

    def restart_app(self) -> str:
        name = self._app_deployment()["metadata"]["name"]
        self.acting()
        self.namespaced("rollout", "restart", f"deployment/{name}")
        wait = int(self.recover_timeout)
        self.namespaced(
            "rollout", "status", f"deployment/{name}", f"--timeout={wait}s", timeout=wait + 10
        )
        self.wait_recovered()
        return f"kubectl rollout restart deployment/{name}: every replica replaced in turn"

    def app_replicas(self) -> tuple[int, int]:
        deployment = self._app_deployment()
        return deployment["spec"].get("replicas", 1), deployment["status"].get("readyReplicas", 0)

    def _app_deployment(self) -> dict[str, Any]:
        selector = f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=app"
        items = json.loads(self.namespaced("get", "deployment", "-l", selector, "-o", "json"))
        if len(items["items"]) != 1:
            raise ChaosError(f"{len(items['items'])} app Deployments match {selector}")
        deployment: dict[str, Any] = items["items"][0]
        return deployment

    # --- recovery and clean-up -------------------------------------------------------------------

    def recovered(self) -> str | None:
        """None when every node not lost on purpose is Ready and the app Deployment and the
        Redis StatefulSet are rolled out and ready; else what is still missing."""
        lost = {node for kind, node in self.faults if kind in ("stopped", "kind", "emulated")}
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
        for node in nodes:
            name = node["metadata"]["name"]
            ready = any(
                c["type"] == "Ready" and c["status"] == "True" for c in node["status"]["conditions"]
            )
            if name not in lost and not ready:
                return f"node {name} not Ready"
        if lost:
            return None  # a node is gone on purpose: its pods cannot all be back
        for kind in ("deployment", "statefulset"):
            selector = f"app.kubernetes.io/instance={self.release}"
            items = json.loads(self.namespaced("get", kind, "-l", selector, "-o", "json"))["items"]
            for item in items:
                spec, status = item["spec"], item["status"]
                wanted = spec.get("replicas", 1)
                if (
                    status.get("readyReplicas", 0) < wanted
                    or status.get("updatedReplicas", 0) < wanted
                ):
                    return f"{kind} {item['metadata']['name']} not rolled out"
                if kind == "statefulset" and status.get("currentRevision") != status.get(
                    "updateRevision"
                ):
                    return f"statefulset {item['metadata']['name']} still rolling"
        return None

    def wait_recovered(self) -> None:
        deadline = time.monotonic() + self.recover_timeout
        while (missing := self.recovered()) is not None:
            if time.monotonic() > deadline:
                raise ChaosError(
                    f"the cluster did not recover in {self.recover_timeout:.0f} s: {missing}"
                )
            time.sleep(2)

    def cleanup(self) -> list[str]:
        """Undo every fault still recorded; returns what was done. Safe to call twice."""
        return [self._undo(node) for node in sorted({node for _, node in self.faults})]

    def _undo(self, node: str) -> str:
        kinds = [kind for kind, n in self.faults if n == node]
        done = []
        if "stopped" in kinds and self.node_restore_command:
            run("sh", "-c", self.node_restore_command.format(node=shlex.quote(node)), timeout=300)
            done.append("ran the node-restore command")
        if "kind" in kinds:
            run("docker", "start", node)
            done.append("started its kind container")
        self.kubectl("taint", "node", node, f"{OUT_OF_SERVICE}-", check=False)
        self.kubectl("uncordon", node)
        done.append("untainted, uncordoned")
        self.faults = [(k, n) for k, n in self.faults if n != node]
        return ", ".join(done)

    def _taint(self, node: str) -> None:
        # The out-of-service taint lets the StatefulSet's pod be replaced instead of staying
        # Terminating for as long as the node is gone.
        self.kubectl("taint", "node", node, OUT_OF_SERVICE, "--overwrite")

    def _provider_id(self, node: str) -> str:
        return self.kubectl("get", "node", node, "-o", "jsonpath={.spec.providerID}")
