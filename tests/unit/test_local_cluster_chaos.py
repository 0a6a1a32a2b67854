"""The chaos of the local cluster's cluster mode (loadtest/chaos/local_cluster.py) and the plans
that drive it: CLUSTER NODES read right, the cluster judged whole only when it is, a shard
master's kill that counts only once its replica took over and it rejoined with its node ID,
and resharding that moves slots from the fullest master to the emptiest. Docker is a fake that
answers like the six-node cluster compose.cluster.yaml makes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from loadtest import chaos_plan
from loadtest.chaos.base import ChaosBackend, ChaosError
from loadtest.chaos.cluster_nodes import health_problem, parse_nodes, reshard_pair
from loadtest.chaos.local import LocalCluster
from loadtest.chaos.local_cluster import LocalRedisCluster, local_backend
from loadtest.run_state import RunState
from tests.unit.fake_commands import FakeCommands

HOSTS = ("redis-0-0", "redis-0-1", "redis-1-0", "redis-1-1", "redis-2-0", "redis-2-1")
ID = {host: host[-3] + host[-1] + "0" * 38 for host in HOSTS}  # "00000...", "01000...", ...
BALANCED = {"redis-0-0": "0-5460", "redis-1-0": "5461-10922", "redis-2-0": "10923-16383"}


def table(masters: dict[str, str], me: str | None = None, failed: str = "") -> str:
    """CLUSTER NODES of the six nodes: `masters` (host: slots) master their shard, every other
    node replicates its shard's master; `me` is flagged myself, `failed` fail."""
    lines = []
    for number, host in enumerate(HOSTS):
        shard_master = next(m for m in masters if m[:7] == host[:7])
        is_master = host in masters
        flags = ",".join(
            [*(["myself"] if host == me else []), "master" if is_master else "slave"]
            + (["fail"] if host == failed else [])
        )
        lines.append(
            f"{ID[host]} 172.30.0.{number + 2}:6379@16379,{host} {flags} "
            f"{'-' if is_master else ID[shard_master]} 0 0 1 connected {masters.get(host, '')}"
        )
    return "\n".join(lines) + "\n"


def test_cluster_nodes_are_read_with_hostnames_slots_and_migrations() -> None:
    text = (
        f"{ID['redis-0-0']} 172.30.0.2:6379@16379,redis-0-0 myself,master - 0 0 1 connected "
        "0-99 200 [300->-" + ID["redis-1-0"] + "]\n"
        f"{ID['redis-0-1']} 172.30.0.3:6379@16379 slave,fail {ID['redis-0-0']} 0 0 1 disconnected\n"
    )
    master, replica = parse_nodes(text)
    assert (master.host, master.shard, master.is_master, master.failed) == (
        "redis-0-0",
        0,
        True,
        False,
    )
    assert master.slots == frozenset(range(100)) | {200}
    assert master.migrating
    assert (replica.host, replica.shard, replica.master, replica.failed) == (
        "172.30.0.3",  # no announced hostname: the IP
        None,
        ID["redis-0-0"],
        True,
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (table(BALANCED), None),
        (table(BALANCED, failed="redis-1-1"), "failed: redis-1-1"),
        (table({**BALANCED, "redis-2-0": "10923-16000"}), "16001 of 16384 slots served"),
        (
            table(BALANCED).replace("connected 0-5460", "connected 0-5460 [7->-x]"),
            "slots being migrated on redis-0-0",
        ),
        (
            table(BALANCED).replace(f"{ID['redis-0-0']} 0 0 1 connected", "- 0 0 1 connected"),
            "redis-0-0 has no connected replica",
        ),
    ],
)
def test_the_cluster_is_whole_only_with_every_slot_and_a_replica_per_shard(
    text: str, problem: str | None
) -> None:
    assert health_problem(parse_nodes(text)) == problem


def test_resharding_takes_from_the_fullest_master_and_gives_to_the_emptiest() -> None:
    source, target = reshard_pair(parse_nodes(table(BALANCED)))
    assert (source.host, target.host) == ("redis-1-0", "redis-0-0")  # 5462 slots; ties: shard 0
    moved = {"redis-0-0": "0-9460", "redis-1-0": "9461-10922", "redis-2-0": "10923-16383"}
    source, target = reshard_pair(parse_nodes(table(moved)))
    assert (source.host, target.host) == ("redis-0-0", "redis-1-0")  # the second undoes it


def test_the_cluster_plan_crashes_an_app_two_shard_masters_and_reshards_both_ways() -> None:
    schedule = chaos_plan.plan("cluster", 100.0)
    assert [action for _, action in schedule] == [
        "kill_app",
        "kill_redis_master",
        "reshard",
        "kill_redis_master",
        "reshard",
    ]
    offsets = [at for at, _ in schedule]
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 100


@pytest.mark.parametrize("name", sorted(chaos_plan.PLANS))
def test_every_planned_action_is_a_backend_action(name: str) -> None:
    for _, action in chaos_plan.PLANS[name]:
        assert callable(getattr(ChaosBackend, action, None)), (name, action)


def test_a_backend_without_shards_refuses_to_reshard_and_the_run_goes_on() -> None:
    run = RunState()
    chaos_plan.execute([(0.0, "reshard")], LocalCluster(project="p"), run, sleep=lambda _: None)
    [event] = run.record()["chaos"]
    assert not event["ok"] and "cannot move slots" in event["outcome"]


# --- the backend against a fake docker -------------------------------------------------------


@pytest.fixture
def docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCommands:
    """A fake docker for project `p`: `ps` lists the six Redis containers; `exec ... redis-cli`
    answers from files under data/<state>/ (state `before`, then `after` once a kill or a
    reshard ran): <host>.nodes or nodes (CLUSTER NODES), <host>.role (ROLE)."""
    fakes = FakeCommands(tmp_path)
    data = tmp_path / "data"
    for state in ("before", "after"):
        (data / state).mkdir(parents=True)
    (data / "state").write_text("before")
    names = "\\n".join(f"p_{host}_1" for host in HOSTS)
    fakes.add(
        "docker",
        f"""
data={data}
state=$(cat $data/state)
host=${{2#p_}}; host=${{host%_1}}
case "$*" in
  "ps --all"*) printf '{names}\\n' ;;
  "ps --quiet"*) echo "${{SHARDED:-}}" ;;
  *"kill -KILL"*) echo after > $data/state ;;
  *"--cluster reshard"*) echo after > $data/state; echo "Moving slot 1 from x to y: ." ;;
  "exec -i"*) cat > /dev/null; printf '2\\n3\\n' ;;
  *"redis-cli cluster nodes") cat $data/$state/$host.nodes 2>/dev/null || cat $data/$state/nodes ;;
  *"redis-cli cluster myid") grep "$host" $data/$state/nodes | cut -d' ' -f1 ;;
  *"redis-cli cluster info") echo cluster_state:ok ;;
  *"redis-cli info replication") printf 'master_link_status:up\\nmaster_sync_in_progress:0\\n' ;;
  *"redis-cli role") cat $data/$state/$host.role 2>/dev/null || echo slave ;;
esac
exit 0""",
    )
    monkeypatch.setenv("PATH", f"{fakes.bin}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CALLS", str(fakes.log))
    return fakes


def data(docker: FakeCommands) -> Path:
    return docker.log.parent / "data"


def calls(docker: FakeCommands, containing: str) -> list[str]:
    return [line for line in docker.log.read_text().splitlines() if containing in line]


def promoted(docker: FakeCommands, victim_id: str | None = None) -> None:
    """After the kill: redis-0-1 masters shard 0, redis-0-0 is back as its replica (with the
    node ID `victim_id`, its own by default)."""
    after = {**BALANCED, "redis-0-1": BALANCED["redis-0-0"]}
    del after["redis-0-0"]
    (data(docker) / "before" / "nodes").write_text(table(BALANCED))
    (data(docker) / "after" / "nodes").write_text(table(after))
    rejoined = table(after, me="redis-0-0")
    if victim_id is not None:
        rejoined = rejoined.replace(ID["redis-0-0"], victim_id, 1)
    (data(docker) / "after" / "redis-0-0.nodes").write_text(rejoined)
    (data(docker) / "after" / "redis-0-1.role").write_text("master\n")


def test_the_mode_is_read_from_the_running_containers(
    docker: FakeCommands, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert type(local_backend("p")) is LocalCluster
    monkeypatch.setenv("SHARDED", "0123abcd")
    assert type(local_backend("p")) is LocalRedisCluster


def test_a_shard_master_kill_ends_once_the_replica_took_over_and_it_rejoined(
    docker: FakeCommands,
) -> None:
    promoted(docker)
    chaos = LocalRedisCluster(project="p", ready_timeout=5)
    outcome = chaos.kill_redis_master()  # the first kill takes shard 0
    [kill] = calls(docker, "kill -KILL")
    assert kill.startswith("docker exec p_redis-0-0_1 ")
    assert chaos.acted_at is not None
    assert "redis-0-1 took over" in outcome
    assert f"node ID {ID['redis-0-0'][:8]} kept" in outcome
    assert chaos.kills == 1


def test_a_master_back_with_another_node_id_fails_the_action(docker: FakeCommands) -> None:
    promoted(docker, victim_id="f" * 40)
    chaos = LocalRedisCluster(project="p", ready_timeout=1)
    with pytest.raises(ChaosError, match="redis-0-0 did not rejoin as a replica with its node ID"):
        chaos.kill_redis_master()


def test_no_master_is_killed_while_its_shard_has_no_replica(docker: FakeCommands) -> None:
    without_replica = table(BALANCED).replace(
        f"{ID['redis-1-0']} 0 0 1 connected", "- 0 0 1 connected"
    )
    (data(docker) / "before" / "nodes").write_text(without_replica)
    chaos = LocalRedisCluster(project="p", ready_timeout=0.5)
    with pytest.raises(ChaosError, match="redis-1-0 has no connected replica"):
        chaos.kill_redis_master(shard=1)
    assert calls(docker, "kill -KILL") == []
    assert chaos.acted_at is None  # nothing was changed: the event starts at no fault


def test_a_reshard_moves_slots_from_the_fullest_master_to_the_emptiest(
    docker: FakeCommands,
) -> None:
    after = {"redis-0-0": "0-9460", "redis-1-0": "9461-10922", "redis-2-0": "10923-16383"}
    (data(docker) / "before" / "nodes").write_text(table(BALANCED))
    (data(docker) / "after" / "nodes").write_text(table(after))
    outcome = LocalRedisCluster(project="p", ready_timeout=5).reshard()
    [reshard] = calls(docker, "--cluster reshard")
    assert reshard.startswith("docker exec p_redis-1-0_1 ")
    assert (
        f"--cluster-from {ID['redis-1-0']} --cluster-to {ID['redis-0-0']} "
        "--cluster-slots 4000 --cluster-yes"
    ) in reshard
    assert outcome.startswith("moved 4000 slots (5461-9460; 5 keys there after the move) from ")
    assert "redis-1-0 (shard 1) to redis-0-0 (shard 0)" in outcome


def test_sentinel_only_actions_say_so_in_cluster_mode() -> None:
    chaos = LocalRedisCluster(project="p")
    for action in ("recreate_redis_master_with_new_ip", "upgrade", "master_node"):
        with pytest.raises(ChaosError, match="cluster mode"):
            getattr(chaos, action)()
