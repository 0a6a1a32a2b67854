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
}


def plan(name: str, run_seconds: float) -> list[tuple[float, str]]:
    if name not in PLANS:
        raise SystemExit(f"unknown chaos plan {name!r}; known: {', '.join(PLANS)}")
    return [(fraction * run_seconds, action) for fraction, action in PLANS[name]]


def backend(options: Any) -> ChaosBackend:
    if options.chaos == "local":
        from .chaos.local import LocalCluster

        return LocalCluster(project=options.chaos_project)
    from .chaos.kubernetes import KubernetesCluster

    return KubernetesCluster(namespace=options.chaos_namespace, release=options.chaos_release)


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
    for offset, action in schedule:
        sleep(max(0.0, offset - (time.time() - run.started)))
        if action == "restore_node" and lost_node is None:
            continue
        chaos.acted_at = None
        called = time.time()
        try:
            if action in ("lose_node", "drain_node"):
                node = chaos.master_node()
                outcome = getattr(chaos, action)(node)
                lost_node = node
            elif action == "restore_node":
                assert lost_node is not None
                outcome = chaos.restore_node(lost_node)
                lost_node = None
            else:
                outcome = getattr(chaos, action)()
            ok = True
        except (ChaosError, OSError) as exc:
            outcome, ok = str(exc), False
        started, ended = chaos.acted_at or called, time.time()
        run.chaos_event(action, outcome, ok, started=started, ended=ended)
        span = f"{started - run.started:.1f}-{ended - run.started:.1f}s"
        print(f"[chaos t={span}] {'' if ok else action + ' FAILED: '}{outcome}", flush=True)
    if lost_node is not None:  # never leave a node down after the run
        chaos.acted_at = None
        called = time.time()
        outcome = chaos.restore_node(lost_node)
        run.chaos_event(
            "restore_node", outcome, True, started=chaos.acted_at or called, ended=time.time()
        )
