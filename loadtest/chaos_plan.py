"""Chaos schedules and their execution during a run. The same plans drive both backends.

A plan is a list of (fraction of the run time, action). `standard` has at least one pod kill,
one Redis master failover and one node loss, then gives the node back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .chaos.base import ChaosBackend, ChaosError
from .run_state import RunState

PLANS: dict[str, list[tuple[float, str]]] = {
    "standard": [
        (0.15, "kill_app"),
        (0.35, "kill_redis_master"),
        (0.55, "lose_node"),
        (0.75, "restore_node"),
        (0.85, "recreate_redis_master_with_new_ip"),
    ],
    "failover": [(0.3, "kill_redis_master"), (0.65, "kill_redis_master")],
    "pods": [(0.25, "kill_app"), (0.5, "kill_app"), (0.75, "kill_app")],
    "node": [(0.3, "lose_node"), (0.8, "restore_node")],
    "drain": [(0.3, "drain_node"), (0.8, "restore_node")],
    "upgrade": [(0.2, "upgrade")],
    # Three rolling restarts of the app alone (Redis untouched): a request they fail is a
    # terminating or starting pod's, and fails the run (loadtest/analysis.py).
    "rollouts": [(0.1, "restart_app"), (0.4, "restart_app"), (0.7, "restart_app")],
    # Redis Cluster on Kubernetes (redis.mode: cluster): a shard master's crash, then one
    # shard more (helm upgrade: its pods join, slots and their sessions move onto it).
    # Early: growing rolls the app and runs a Job; it must end well before the load does.
    "grow": [(0.1, "kill_app"), (0.2, "kill_redis_master"), (0.4, "grow_shards")],
    # `standard` without the node loss, for clusters with no node to spare.
    "crashes": [
        (0.2, "kill_app"),
        (0.45, "kill_redis_master"),
        (0.7, "recreate_redis_master_with_new_ip"),
    ],
    # Redis Cluster (the local cluster's cluster mode): an app pod crash; a shard master's
    # crash (its replica takes over, it rejoins as that one's replica); slots moved, keys and
    # all, from one shard to another under load; another shard's master crashed; the slots
    # moved back.
    "cluster": [
        (0.12, "kill_app"),
        (0.28, "kill_redis_master"),
        (0.45, "reshard"),
        (0.62, "kill_redis_master"),
        (0.8, "reshard"),
    ],
    "reshard": [(0.3, "reshard"), (0.7, "reshard")],
    # No fault: the load itself ramps up and down (loadtest/scale_shape.py) and the HPA
    # must scale the app out and back in; the app's replicas are sampled all along.
    "scale": [],
}
# How often the app's desired and ready replica counts are sampled (Kubernetes backend).
REPLICA_SAMPLE_S = 5.0


def plan(name: str, run_seconds: float) -> list[tuple[float, str]]:
    if name not in PLANS:
        raise SystemExit(f"unknown chaos plan {name!r}; known: {', '.join(PLANS)}")
    return [(fraction * run_seconds, action) for fraction, action in PLANS[name]]


def backend(options: Any) -> ChaosBackend:
    if options.chaos == "local":
        from .chaos.local_cluster import local_backend

        return local_backend(options.chaos_project)  # Sentinel or cluster mode, as it runs
    from .chaos.kubernetes import KubernetesCluster

    return KubernetesCluster(
        context=options.chaos_context,
        namespace=options.chaos_namespace,
        release=options.chaos_release,
        node_loss_command=options.node_loss_command,
        node_restore_command=options.node_restore_command,
        upgrade_image_tag=options.upgrade_image_tag,
        spare_nodes=[n for n in options.spare_nodes.split(",") if n],
    )


def execute(
    schedule: list[tuple[float, str]],
    chaos: ChaosBackend,
    run: RunState,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Run the schedule (a greenlet; `sleep` defaults to gevent's): each action at its offset
    from the start, logged with when it began to act (after its look-ups) and when it
    returned."""
    if sleep is None:
        import gevent  # here, not at import: the tests load this module without gevent

        sleep = gevent.sleep
    lost_node: str | None = None
    try:
        for offset, action in schedule:
            sleep(max(0.0, offset - (time.time() - run.started)))
            if action == "restore_node" and lost_node is None:
                continue
            chaos.acted_at = None
            called = time.time()
            try:
                if action in ("lose_node", "drain_node"):
                    node = chaos.node_to_lose()
                    lost_node = node  # before acting: a failure half-way is still undone
                    outcome = getattr(chaos, action)(node)
                elif action == "restore_node":
                    assert lost_node is not None
                    outcome = chaos.restore_node(lost_node)
                    lost_node = None
                else:
                    outcome = getattr(chaos, action)()
                ok = True
            except Exception as exc:  # any failure is the action's: logged, the run goes on
                outcome, ok = str(exc) if isinstance(exc, ChaosError) else repr(exc), False
            _log(run, action, outcome, ok, chaos.acted_at or called)
        if lost_node is not None:  # never leave a node down after the run
            chaos.acted_at = None
            called = time.time()
            _log(run, "restore_node", chaos.restore_node(lost_node), True, chaos.acted_at or called)
    finally:
        for undone in chaos.cleanup():
            print(f"[chaos clean-up] {undone}", flush=True)


def watch_replicas(
    chaos: ChaosBackend,
    run: RunState,
    seconds: float,
    sleep: Callable[[float], object] | None = None,
) -> None:
    """Sample the app's replica counts every REPLICA_SAMPLE_S until `seconds` after the start
    (a greenlet, killed when the run ends; bounded either way)."""
    if sleep is None:
        import gevent

        sleep = gevent.sleep
    while time.time() - run.started < seconds:
        try:
            counts = chaos.app_replicas()
        except Exception as exc:  # a missed sample is logged, never the end of the run
            print(f"[replicas] not sampled: {exc}", flush=True)
        else:
            if counts is None:
                return  # this backend cannot tell
            run.replica_sample(*counts)
        sleep(REPLICA_SAMPLE_S)


def _log(run: RunState, action: str, outcome: str, ok: bool, started: float) -> None:
    ended = time.time()
    run.chaos_event(action, outcome, ok, started=started, ended=ended)
    span = f"{started - run.started:.1f}-{ended - run.started:.1f}s"
    print(f"[chaos t={span}] {'' if ok else action + ' FAILED: '}{outcome}", flush=True)
