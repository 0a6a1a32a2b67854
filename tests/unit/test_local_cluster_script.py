"""scripts/local-cluster.sh and local-cluster/compose.cluster.yaml, the local cluster's two
Redis modes: which compose files each mode runs, that one mode never starts over the other,
that `down` removes either, and that the cluster-mode fleet is laid out as the chart lays out
its shards (a shard's master and replica on different nodes, names the apps and the bootstrap
agree on). With fake docker and docker-compose: nothing is started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.fake_commands import ROOT, FakeCommands

BASE = "--file local-cluster/compose.yaml"
BOTH = f"{BASE} --file local-cluster/compose.cluster.yaml"


@pytest.fixture
def fakes(tmp_path: Path) -> FakeCommands:
    """docker: `ps` finds cluster-mode pods when RUNNING=cluster, Sentinels when sentinel;
    `inspect` prints $BOOTSTRAP (the bootstrap container's status and exit code)."""
    fakes = FakeCommands(tmp_path)
    fakes.add(
        "docker",
        """
case "$*" in
  *"label=sessionfleet.shard"*) [ "${RUNNING:-}" = cluster ] && echo 0a1b2c ;;
  *"label=sessionfleet.role=sentinel"*) [ "${RUNNING:-}" = sentinel ] && echo 3d4e5f ;;
  inspect*) [ -n "${BOOTSTRAP:-}" ] && echo "$BOOTSTRAP" || exit 1 ;;
  *"cluster info"*) printf 'cluster_state:%s\\r\\n' "${STATE:-ok}" ;;
  logs*) echo "cluster-bootstrap: FAILED: something" ;;
esac
exit 0""",
    )
    fakes.add("docker-compose")
    return fakes


@pytest.mark.parametrize(("mode", "files"), [("sentinel", BASE), ("cluster", BOTH)])
def test_each_mode_runs_its_compose_files(fakes: FakeCommands, mode: str, files: str) -> None:
    run = fakes.run("local-cluster.sh", f"compose_files {mode}")
    assert (run.returncode, run.stdout.strip()) == (0, files)


def test_an_unknown_mode_is_refused_before_anything_runs(fakes: FakeCommands) -> None:
    run = fakes.execute("local-cluster.sh", "up", env={"REDIS_MODE": "sentinels"})
    assert run.returncode == 2
    assert "REDIS_MODE must be sentinel or cluster, not 'sentinels'" in run.stderr
    assert run.calls == []


@pytest.mark.parametrize(("running", "mode"), [("cluster", "cluster"), ("sentinel", "sentinel")])
def test_the_running_mode_is_read_from_the_project_s_containers(
    fakes: FakeCommands, running: str, mode: str
) -> None:
    run = fakes.run("local-cluster.sh", "running_mode", {"RUNNING": running})
    assert run.stdout.strip() == mode
    assert all("label=com.docker.compose.project=sessionfleet-local" in c for c in run.calls)
    assert fakes.run("local-cluster.sh", "running_mode").stdout.strip() == ""


@pytest.mark.parametrize(("running", "wanted"), [("cluster", "sentinel"), ("sentinel", "cluster")])
def test_up_never_starts_one_mode_over_the_other(
    fakes: FakeCommands, running: str, wanted: str
) -> None:
    run = fakes.execute("local-cluster.sh", "up", env={"RUNNING": running, "REDIS_MODE": wanted})
    assert run.returncode == 1
    assert f"runs in {running} mode: make local-down first" in run.stderr
    assert run.called("docker-compose") == []


@pytest.mark.parametrize("mode", ["sentinel", "cluster"])
def test_down_removes_either_mode_s_containers_and_volumes(
    fakes: FakeCommands, tmp_path: Path, mode: str
) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    run = fakes.execute(
        "local-cluster.sh", "down", env={"REDIS_MODE": mode, "SECRETS_DIR": str(secrets)}
    )
    assert run.returncode == 0, run.stderr
    assert run.called("docker-compose") == [
        f"docker-compose {BOTH} down --volumes --remove-orphans --timeout 5"
    ]
    assert not secrets.exists()


@pytest.mark.parametrize(
    ("bootstrap", "state", "ready"),
    [("exited 0", "ok", True), ("running 0", "ok", False), ("exited 0", "fail", False)],
)
def test_cluster_mode_is_ready_once_the_bootstrap_made_a_healthy_cluster(
    fakes: FakeCommands, bootstrap: str, state: str, ready: bool
) -> None:
    run = fakes.run(
        "local-cluster.sh", "redis_ready_cluster", {"BOOTSTRAP": bootstrap, "STATE": state}
    )
    assert (run.returncode == 0) is ready


def test_a_failed_bootstrap_fails_up_at_once_with_its_log(fakes: FakeCommands) -> None:
    run = fakes.run("local-cluster.sh", "redis_ready_cluster", {"BOOTSTRAP": "exited 1"})
    assert run.returncode == 1
    assert "FAILED: something" in run.stdout + run.stderr
    assert "the cluster bootstrap failed (exited 1)" in run.stderr


def test_demo_refuses_an_unknown_mode_before_starting_anything(fakes: FakeCommands) -> None:
    run = fakes.execute("demo.sh", env={"REDIS_MODE": "standalone"})
    assert run.returncode == 2
    assert "REDIS_MODE must be sentinel or cluster" in run.stderr
    assert run.calls == []


# --- compose.cluster.yaml -------------------------------------------------------------------


def compose(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "local-cluster" / name).read_text())
    return loaded["services"]


BASE_SERVICES = compose("compose.yaml")
CLUSTER = compose("compose.cluster.yaml")
NODES = {
    name: service
    for name, service in CLUSTER.items()
    if name.startswith("redis-") and "network_mode" in service
}


def test_cluster_mode_switches_off_exactly_the_sentinel_mode_redis_pods() -> None:
    sentinel_pods = {
        name
        for name, service in BASE_SERVICES.items()
        if service["labels"]["sessionfleet.role"] in ("pod", "redis", "sentinel", "watch")
    }
    switched_off = {name for name, s in CLUSTER.items() if s.get("profiles") == ["sentinel"]}
    assert switched_off == sentinel_pods
    assert {"app-a", "app-b", "app-c", "ingress", "dns"}.isdisjoint(switched_off)


def test_each_shard_has_its_master_and_replica_on_different_nodes() -> None:
    shards: dict[str, list[str]] = {}
    for service in NODES.values():
        shards.setdefault(service["labels"]["sessionfleet.shard"], []).append(
            service["labels"]["sessionfleet.node"]
        )
    assert sorted(shards) == ["0", "1", "2"]
    assert all(len(set(nodes)) == len(nodes) == 2 for nodes in shards.values())
    per_node = sorted(s["labels"]["sessionfleet.node"] for s in NODES.values())
    assert per_node == ["a", "a", "b", "b", "c", "c"]


def test_every_node_announces_its_pod_s_name_and_keeps_its_own_volume() -> None:
    volumes = set()
    for name, service in NODES.items():
        pod = CLUSTER[service["network_mode"].removeprefix("service:")]
        assert pod["hostname"] == name
        assert pod["networks"]["fleet"]["aliases"] == [name]
        assert service["environment"]["SF_ANNOUNCE_HOST"] == name
        assert service["labels"] == {**pod["labels"], "sessionfleet.role": "redis"}
        [data] = [v for v in service["volumes"] if v.endswith(":/var/lib/redis")]
        volumes.add(data.split(":")[0])
    assert len(volumes) == 6


def test_the_apps_and_the_bootstrap_name_every_node() -> None:
    addresses = sorted(f"{name}:6379" for name in NODES)
    for app in ("app-a", "app-b", "app-c"):
        env = CLUSTER[app]["environment"]
        assert sorted(env["SESSIONFLEET_REDIS_CLUSTER_NODES"].split(",")) == addresses
        sentinel_keys = [k for k in BASE_SERVICES[app]["environment"] if "SENTINEL" in k]
        assert sentinel_keys and all(env[k] is None for k in sentinel_keys)
    shards = CLUSTER["cluster-bootstrap"]["environment"]["SF_SHARDS"].split()
    assert shards == [f"redis-{s}-0:6379,redis-{s}-1:6379" for s in range(3)]
