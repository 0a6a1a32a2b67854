"""The Kubernetes chaos backend is safe to point at a cluster: an explicit context on every call,
faults recorded before they are made and undone on every way out, crashes that are crashes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from loadtest import chaos_plan
from loadtest.chaos.base import ChaosError
from loadtest.chaos.kubernetes import KubernetesCluster
from loadtest.run_state import RunState
from tests.unit.fake_commands import FakeCommands

POD = {
    "metadata": {"name": "sf-sessionfleet-redis-1"},
    "spec": {"nodeName": "node-b"},
    "status": {"phase": "Running", "podIP": "10.244.2.7"},
}
APP = {
    "metadata": {"name": "sf-sessionfleet-app-x"},
    "spec": {"nodeName": "node-b"},
    "status": {"phase": "Running"},
}
READY_NODE = {
    "metadata": {"name": "node-b"},
    "status": {"conditions": [{"type": "Ready", "status": "True"}]},
}
ROLLED = {
    "metadata": {"name": "x"},
    "spec": {"replicas": 3},
    "status": {
        "readyReplicas": 3,
        "updatedReplicas": 3,
        "currentRevision": "r",
        "updateRevision": "r",
    },
}


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCommands:
    """A fake kubectl answering like a 3-node cluster whose node-b runs redis-1 (the master)."""
    fakes = FakeCommands(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "redis.json").write_text(json.dumps({"items": [POD]}))
    (data / "app.json").write_text(json.dumps({"items": [APP]}))
    (data / "nodes.json").write_text(json.dumps({"items": [READY_NODE]}))
    (data / "rolled.json").write_text(json.dumps({"items": [ROLLED]}))
    fakes.add(
        "kubectl",
        f"""
case "$*" in
  *"component=redis"*) cat {data}/redis.json ;;
  *"component=app"*) cat {data}/app.json ;;
  *"get nodes"*) cat {data}/nodes.json ;;
  *"get deployment"*|*"get statefulset"*) cat {data}/rolled.json ;;
  *providerID*) echo "" ;;
  *"redis-cli -p 6379 role"*) echo master ;;
  *"delete pod"*) [ -n "$FAIL_DELETE" ] && {{ echo refused >&2; exit 1; }} ;;
esac
exit 0""",
    )
    monkeypatch.setenv("PATH", f"{fakes.bin}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(fakes.log))
    return fakes


def calls(fakes: FakeCommands) -> list[str]:
    return fakes.log.read_text().splitlines()


def test_no_context_no_chaos() -> None:
    with pytest.raises(ChaosError, match="explicit kube context"):
        KubernetesCluster(context="")


def test_every_call_names_the_context(kubectl: FakeCommands) -> None:
    backend = KubernetesCluster(context="bench", recover_timeout=5)
    backend.kill_redis_master()
    assert calls(kubectl) and all("--context bench" in call for call in calls(kubectl))


def test_a_master_kill_is_a_crash_not_a_handover(kubectl: FakeCommands) -> None:
    KubernetesCluster(context="bench", recover_timeout=5).kill_redis_master()
    [crash] = [c for c in calls(kubectl) if "SHUTDOWN" in c]
    assert "sf-sessionfleet-redis-1" in crash and "SHUTDOWN NOSAVE NOW FORCE" in crash
    assert not [c for c in calls(kubectl) if "delete pod" in c]  # a delete would run pre-stop


def test_an_emulated_node_loss_cordons_taints_crashes_and_force_deletes(
    kubectl: FakeCommands,
) -> None:
    outcome = KubernetesCluster(context="bench").lose_node("node-b")
    assert "emulated" in outcome
    made = calls(kubectl)
    assert any("cordon node-b" in c for c in made)
    assert any("taint node node-b node.kubernetes.io/out-of-service" in c for c in made)
    assert any("SHUTDOWN NOSAVE NOW FORCE" in c for c in made)
    assert any("kill -QUIT 1" in c for c in made)
    deletes = [c for c in made if "delete pod" in c]
    assert len(deletes) == 2 and all("--grace-period=0 --force" in c for c in deletes)


def test_a_fault_that_fails_half_way_is_still_undone(
    kubectl: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAIL_DELETE", "1")
    backend, run = KubernetesCluster(context="bench"), RunState()
    chaos_plan.execute([(0.0, "lose_node")], backend, run, sleep=lambda _: None)
    assert run.chaos[0]["ok"] is False  # the action failed after cordoning and tainting ...
    made = calls(kubectl)
    assert any("uncordon node-b" in c for c in made)  # ... and the node was given back
    assert any("out-of-service=nodeshutdown:NoExecute-" in c for c in made)
    assert backend.faults == []


def test_clean_up_runs_when_the_run_is_interrupted(kubectl: FakeCommands) -> None:
    backend, run = KubernetesCluster(context="bench"), RunState()

    def interrupted(_: float) -> None:
        if run.chaos:  # Ctrl-C while waiting for the next action, the node still lost
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        chaos_plan.execute(
            [(0.0, "lose_node"), (60.0, "restore_node")], backend, run, sleep=interrupted
        )
    assert any("uncordon node-b" in c for c in calls(kubectl))
    assert backend.faults == [] and backend.cleanup() == []  # and a second clean-up is a no-op


def test_a_node_loss_command_is_used_when_given(kubectl: FakeCommands, tmp_path: Path) -> None:
    marker = tmp_path / "lost"
    backend = KubernetesCluster(
        context="bench",
        node_loss_command=f"echo {{node}} > {marker}",
        node_restore_command=f"rm {marker}",
        recover_timeout=5,
    )
    assert "node-loss command" in backend.lose_node("node-b")
    assert marker.read_text().strip() == "node-b"
    backend.restore_node("node-b")
    assert not marker.exists()


def test_a_spared_node_is_never_lost(kubectl: FakeCommands) -> None:
    """The node where the load comes in is spared: the master's node otherwise."""
    assert KubernetesCluster(context="bench").node_to_lose() == "node-b"
    with pytest.raises(ChaosError, match="spared"):
        KubernetesCluster(context="bench", spare_nodes=["node-b"]).node_to_lose()
