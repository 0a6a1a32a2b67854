"""One local container cluster for the whole cluster test session (it takes ~1 min to build
and start), under its own compose project, subnet and port so it never meets a user's own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.processes import ROOT, free_port
from loadtest.chaos.local import LocalCluster

PROJECT = "sf-test"


@dataclass
class Fleet:
    cluster: LocalCluster
    url: str
    password: str
    env: dict[str, str]


@pytest.fixture(scope="session")
def fleet_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    env = {
        **os.environ,
        "COMPOSE_PROJECT_NAME": PROJECT,
        "INGRESS_PORT": str(free_port()),
        "SECRETS_DIR": str(tmp_path_factory.mktemp("secrets")),
        "FLEET_SUBNET": "172.31.250.0/24",
        "FLEET_IP_RANGE": "172.31.250.0/25",
        "FLEET_DNS": "172.31.250.250",
        "FLEET_INGRESS_IP": "172.31.250.249",
    }
    script = str(ROOT / "scripts" / "local-cluster.sh")
    up = subprocess.run(
        [script, "up"], env=env, capture_output=True, text=True, timeout=900, check=False
    )
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        password = (Path(env["SECRETS_DIR"]) / "loadtest-password").read_text().strip()
        yield Fleet(
            LocalCluster(project=PROJECT), f"http://127.0.0.1:{env['INGRESS_PORT']}", password, env
        )
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=300, check=False)


@pytest.fixture
def fleet(fleet_env: Fleet) -> tuple[LocalCluster, str, str]:
    return fleet_env.cluster, fleet_env.url, fleet_env.password
