"""`make e2e`: the chart end to end on a real cluster, named by an explicit kube context.

Settings (environment):
  KUBE_CONTEXT        required: the cluster to use (never whatever context is current)
  E2E_NAMESPACE       [sessionfleet-e2e], created and deleted by the run
  E2E_RELEASE         [e2e]
  E2E_IMAGE           [sessionfleet:dev] the app image; E2E_UPGRADE_TAG [<tag>-next] the tag
                      the upgrade plan moves to
  E2E_LOAD_IMAGE      shell command with {image} and {target} that makes a local image
                      available to the nodes under another name ({target}), e.g.
                      `kind load docker-image {image} --name sessionfleet` after tagging;
                      unset: the images must be pullable
  E2E_REDIS_IMAGE     [redis:7.2.7-bookworm]  E2E_INGRESS_IMAGE [haproxy:2.8]
  E2E_REDIS_MODE      [sentinel] or cluster: the chart's redis.mode (Redis Cluster, 3 x 1)
  E2E_VALUES          extra values file (YAML) for the release
  E2E_POD_CIDR        [10.0.0.0/8] the pod network: where the stand-in ingress runs
  E2E_TARGET          the URL of the cluster's own Gateway/ingress for the release (make
                      e2e-kind: Traefik on kind); unset: a stand-in HAProxy in the cluster
  E2E_DURATION [180]  E2E_USERS [24]  seconds and users of each Locust run
  E2E_SCALE_DURATION [420]  E2E_SCALE_USERS [48]  the scale plan's (its ramp needs more)
  NODE_LOSS_COMMAND / NODE_RESTORE_COMMAND  how to lose a node for real (else emulated)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.processes import ROOT, Proc, free_port, wait_until
from loadtest.chaos.helm import Helm

HERE = Path(__file__).parent


@dataclass
class E2E:
    context: str
    namespace: str
    release: str
    image: str
    upgrade_tag: str
    workdir: Path
    helm: Helm
    url: str = ""
    ingress_node: str = ""
    redis_mode: str = "sentinel"

    @property
    def redis_workloads(self) -> list[str]:
        """The Redis StatefulSets, as `kubectl rollout status` names them."""
        names = self.kubectl(
            "-n",
            self.namespace,
            "get",
            "statefulset",
            "-l",
            f"app.kubernetes.io/instance={self.release},app.kubernetes.io/component=redis",
            "-o",
            "name",
        ).split()
        assert names, "no Redis StatefulSet"
        return names

    def kubectl(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        done = subprocess.run(
            ["kubectl", "--context", self.context, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def values(self) -> dict[str, Any]:
        repository, _, tag = self.image.rpartition(":")
        values: dict[str, Any] = {
            "image": {"repository": repository, "tag": tag},
            "redis": {
                "mode": self.redis_mode,
                "image": {
                    "repository": REDIS_IMAGE.rpartition(":")[0],
                    "tag": REDIS_IMAGE.rpartition(":")[2],
                },
            },
            "loadtest": {"users": 1000},
            # The stand-in ingress runs in the pod network and adds X-Forwarded-For.
            "app": {
                "trustedProxies": os.environ.get("E2E_POD_CIDR", "10.0.0.0/8"),
                "session": {"cookieSecure": False},  # plain http through the port-forward
            },
        }
        extra = os.environ.get("E2E_VALUES")
        if extra:
            values = merge(values, yaml.safe_load(Path(extra).read_text()))
        return values

    def run_locust(
        self, plan: str, report: Path, duration: str = "", users: str = ""
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "TARGET": self.url,
            "CHAOS": "kubernetes",
            "KUBE_CONTEXT": self.context,
            "NAMESPACE": self.namespace,
            "RELEASE": self.release,
            "PLAN": plan,
            "DURATION": duration or os.environ.get("E2E_DURATION", "180"),
            "USERS": users or os.environ.get("E2E_USERS", "24"),
            "UPGRADE_IMAGE_TAG": self.upgrade_tag,
            "SPARE_NODES": self.ingress_node,
            "REPORT": str(report),
        }
        return subprocess.run(
            [str(ROOT / "scripts" / "loadtest.sh")],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )


REDIS_IMAGE = os.environ.get("E2E_REDIS_IMAGE", "redis:7.2.7-bookworm")


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_images(image: str, upgrade_tag: str) -> None:
    command = os.environ.get("E2E_LOAD_IMAGE")
    if not command:
        return  # pulled by the nodes
    repository = image.rpartition(":")[0]
    targets = [(image, image), (image, f"{repository}:{upgrade_tag}")]
    for source, target in targets:
        subprocess.run(command.format(image=source, target=target), shell=True, check=True)


@pytest.fixture(scope="session")
def e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    context = os.environ.get("KUBE_CONTEXT", "")
    if not context:
        pytest.fail("make e2e needs KUBE_CONTEXT=<context>: it never uses the current context")
    namespace = os.environ.get("E2E_NAMESPACE", "sessionfleet-e2e")
    release = os.environ.get("E2E_RELEASE", "e2e")
    image = os.environ.get("E2E_IMAGE", "sessionfleet:dev")
    upgrade_tag = os.environ.get("E2E_UPGRADE_TAG", image.rpartition(":")[2] + "-next")
    run = E2E(
        context=context,
        namespace=namespace,
        release=release,
        image=image,
        upgrade_tag=upgrade_tag,
        workdir=Path(tmp_path_factory.mktemp("e2e")),
        helm=Helm(context=context, namespace=namespace, release=release),
        redis_mode=os.environ.get("E2E_REDIS_MODE", "sentinel"),
    )
    load_images(image, upgrade_tag)
    started = time.monotonic()
    run.helm.install(run.values())
    print(f"\ninstalled {release} in {time.monotonic() - started:.1f} s ({run.helm.engine})")
    with contextlib.ExitStack() as stack:
        if os.environ.get("E2E_TARGET"):
            run.url = os.environ["E2E_TARGET"]
            wait_until(lambda: _answers(run.url), 120, f"the release through {run.url}")
        else:
            stack.enter_context(stand_in_ingress(run))
        yield run
    # Uninstalling is the last test's subject; this only makes sure nothing is left.
    with contextlib.suppress(Exception):
        run.helm.uninstall()
    run.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false")


@contextlib.contextmanager
def stand_in_ingress(run: E2E) -> Iterator[None]:
    template = (HERE / "ingress.yaml.template").read_text()
    config = template.split("haproxy.cfg: |", 1)[1]
    nodes = json.loads(run.kubectl("get", "nodes", "-o", "json"))["items"]
    run.ingress_node = next(
        n["metadata"]["name"] for n in nodes if not n["spec"].get("unschedulable")
    )
    manifest = template.format(
        node=run.ingress_node,
        release=run.release,
        namespace=run.namespace,
        image=os.environ.get("E2E_INGRESS_IMAGE", "haproxy:2.8"),
        config_checksum=hashlib.sha256(config.encode()).hexdigest()[:16],
    )
    applied = run.workdir / "ingress.yaml"
    applied.write_text(manifest)
    run.kubectl("-n", run.namespace, "apply", "-f", str(applied))
    run.kubectl(
        "-n",
        run.namespace,
        "rollout",
        "status",
        f"deploy/{run.release}-e2e-ingress",
        "--timeout=180s",
        timeout=200,
    )
    forward = None
    address = run.kubectl(
        "-n",
        run.namespace,
        "get",
        "service",
        f"{run.release}-e2e-ingress",
        "-o",
        "jsonpath={.spec.clusterIP}",
    )
    if _answers(f"http://{address}"):
        run.url = f"http://{address}"  # the Service is routable from here (Linux nodes)
    else:
        # Restarted whenever it drops: the stand-in ingress' pod may be lost with its node.
        port = free_port()
        loop = (
            f"while :; do kubectl --context {run.context} -n {run.namespace} port-forward "
            f"svc/{run.release}-e2e-ingress {port}:80; sleep 1; done"
        )
        forward = Proc(["bash", "-c", loop], run.workdir / "port-forward.log")
        run.url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            lambda: httpx.get(f"{run.url}/healthz", timeout=2).status_code == 200,
            60,
            "the stand-in ingress",
        )
        yield
    finally:
        if forward is not None:
            forward.stop()
        run.kubectl(
            "-n", run.namespace, "delete", "-f", str(applied), "--ignore-not-found", check=False
        )


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
