"""One local container cluster per mode, each under its own compose project, subnet and port so
it never meets a user's own: the Sentinel-mode fleet for the whole cluster test session (it
takes ~1 min to build and start), the cluster-mode fleet for its module."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.processes import ROOT, free_port
from loadtest.chaos.local import LocalCluster
from loadtest.chaos.local_cluster import LocalRedisCluster

PROJECT = "sf-test"
SCRIPT = str(ROOT / "scripts" / "local-cluster.sh")


@dataclass
class Fleet:
    cluster: LocalCluster
    url: str
    password: str
    env: dict[str, str]


def fleet_environment(secrets: Path, project: str, mode: str, subnet: str) -> dict[str, str]:
    """What scripts/local-cluster.sh reads; `subnet` is the first three octets (a /24)."""
    return {
        **os.environ,
        "REDIS_MODE": mode,
        "COMPOSE_PROJECT_NAME": project,
        "INGRESS_PORT": str(free_port()),
        "SECRETS_DIR": str(secrets),
        "FLEET_SUBNET": f"{subnet}.0/24",
        "FLEET_IP_RANGE": f"{subnet}.0/25",
        "FLEET_DNS": f"{subnet}.250",
        "FLEET_INGRESS_IP": f"{subnet}.249",
    }


@contextmanager
def running_fleet(env: dict[str, str], cluster: LocalCluster) -> Iterator[Fleet]:
    """`local-cluster.sh up`, then `down` whatever happens."""
    up = subprocess.run(
        [SCRIPT, "up"], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        password = (Path(env["SECRETS_DIR"]) / "loadtest-password").read_text().strip()
        yield Fleet(cluster, f"http://127.0.0.1:{env['INGRESS_PORT']}", password, env)
    finally:
        subprocess.run([SCRIPT, "down"], env=env, capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="session")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    env = fleet_environment(tmp_path_factory.mktemp("secrets"), PROJECT, "sentinel", "172.31.250")
    with running_fleet(env, LocalCluster(project=PROJECT)) as fleet:
        yield fleet


@pytest.fixture
def fleet(fleet_env: Fleet) -> tuple[LocalCluster, str, str]:
    return fleet_env.cluster, fleet_env.url, fleet_env.password


SHARDED_PROJECT = "sf-test-shards"


@pytest.fixture(scope="module")
def sharded_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The cluster-mode fleet (Redis Cluster, 3 shards x 1 replica), for one module."""
    env = fleet_environment(
        tmp_path_factory.mktemp("secrets"), SHARDED_PROJECT, "cluster", "172.31.251"
    )
    with running_fleet(env, LocalRedisCluster(project=SHARDED_PROJECT)) as fleet:
        yield fleet
