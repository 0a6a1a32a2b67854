"""The chart on any conformant cluster: optional kinds only where served, names that fit,
values that size and spread Redis, metrics off the public port, secrets never rendered."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harness.helm import CLUSTER_APIS, GATEWAY_APIS, render, render_files

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def kinds(objects: list[dict[str, Any]]) -> set[str]:
    return {o["kind"] for o in objects}


def one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"].endswith(suffix)]
    return found


def app_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def redis_env(objects: list[dict[str, Any]]) -> dict[str, str]:
    container = one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


ALL_OPTIONAL = {
    "httpRoute": {"enabled": True},
    "gateway": {"create": True},
    "metrics": {"serviceMonitor": {"enabled": True}},
    "prometheusRule": {"enabled": True},
}


def test_optional_kinds_are_left_out_where_the_cluster_does_not_serve_them() -> None:
    files = render_files(ALL_OPTIONAL)  # stock EKS: no Gateway API, no Prometheus Operator
    objects = render(ALL_OPTIONAL)
    assert not kinds(objects) & {"HTTPRoute", "Gateway", "ServiceMonitor", "PrometheusRule"}
    notes = next(text for path, text in files.items() if path.endswith("NOTES.txt"))
    assert "NO HTTPRoute WAS CREATED" in notes and "ServiceMonitor: NONE WAS CREATED" in notes
    served = render(ALL_OPTIONAL, api_versions=CLUSTER_APIS)
    assert {"HTTPRoute", "Gateway", "ServiceMonitor", "PrometheusRule"} <= kinds(served)


def test_a_route_without_a_gateway_to_attach_to_is_refused() -> None:
    with pytest.raises(Exception, match=r"httpRoute\.parentRefs"):
        render({"httpRoute": {"enabled": True}}, api_versions=GATEWAY_APIS)
    parent = {"httpRoute": {"enabled": True, "parentRefs": [{"name": "shared", "namespace": "gw"}]}}
    route = one(render(parent, api_versions=GATEWAY_APIS), "HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "shared", "namespace": "gw"}]


def test_the_chart_can_be_a_subchart() -> None:
    assert render({"global": {"imageRegistry": "mirror.internal"}})


@pytest.mark.parametrize("release", ["checkout-sessions-production-eu-west-1-blue", "x" * 53])
def test_long_release_names_give_names_kubernetes_accepts(release: str) -> None:
    objects = render(ALL_OPTIONAL, api_versions=CLUSTER_APIS, release=release)
    for obj in objects:
        name = obj["metadata"]["name"]
        assert len(name) <= 63 and DNS_LABEL.match(name), name
    statefulset = one(objects, "StatefulSet")["metadata"]["name"]
    assert len(statefulset) <= 52  # + "-" + a 10-character revision hash in a pod label
    for service in (o for o in objects if o["kind"] == "Service"):
        assert re.match(r"^[a-z]", service["metadata"]["name"])  # DNS-1035
    pod = f"{statefulset}-4"
    assert len(pod) <= 63


def test_five_redis_pods_with_a_majority_quorum_and_a_named_master() -> None:
    objects = render({"redis": {"replicas": 5, "masterName": "shop-sessions"}})
    assert one(objects, "StatefulSet")["spec"]["replicas"] == 5
    env = redis_env(objects)
    assert env["SF_QUORUM"] == "3" and env["SF_MASTER_NAME"] == "shop-sessions"
    assert len(env["SF_SENTINELS"].split()) == len(env["SF_REDIS_NODES"].split()) == 5
    assert "down-after-milliseconds shop-sessions" in env["SF_SENTINEL_EXTRA_CONFIG"]
    app = app_env(objects)
    assert app["SESSIONFLEET_REDIS_MASTER_NAME"] == "shop-sessions"
    assert len(app["SESSIONFLEET_REDIS_SENTINELS"].split(",")) == 5
    assert render({"redis": {"replicas": 3}}) and redis_env(render({}))["SF_QUORUM"] == "2"


def test_redis_and_sentinels_are_named_absolutely() -> None:
    """A trailing dot: the resolver asks once, instead of walking the search list."""
    objects = render({})
    for address in app_env(objects)["SESSIONFLEET_REDIS_SENTINELS"].split(","):
        assert address.rpartition(":")[0].endswith(".svc.cluster.local.")
    for address in redis_env(objects)["SF_REDIS_NODES"].split():
        assert address.rpartition(":")[0].endswith(".svc.cluster.local.")


def test_redis_spreads_over_nodes_and_zones() -> None:
    spec = one(render({}), "StatefulSet")["spec"]["template"]["spec"]
    assert spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    [zone] = spec["topologySpreadConstraints"]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone"
    assert zone["whenUnsatisfiable"] == "ScheduleAnyway"
    hard = one(render({"redis": {"zoneSpread": "hard", "antiAffinity": "soft"}}), "StatefulSet")
    hard_spec = hard["spec"]["template"]["spec"]
    assert hard_spec["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert (
        "requiredDuringSchedulingIgnoredDuringExecution"
        not in hard_spec["affinity"]["podAntiAffinity"]
    )


def test_the_app_spread_ignores_tainted_nodes() -> None:
    spec = one(render({}), "Deployment")["spec"]["template"]["spec"]
    by_host = next(
        c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "kubernetes.io/hostname"
    )
    assert by_host["nodeTaintsPolicy"] == "Honor"


def test_an_unready_app_pod_may_be_evicted() -> None:
    pdb = one(render({}), "PodDisruptionBudget", "-app")
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def _mebibytes(quantity: str) -> float:
    units = {"Mi": 1, "Gi": 1024, "mb": 1e6 / 2**20, "gb": 1e9 / 2**20}
    unit = next(u for u in units if quantity.endswith(u))
    return float(quantity.removesuffix(unit)) * units[unit]


def test_redis_memory_limit_leaves_room_for_a_fork() -> None:
    objects = render({})
    env = redis_env(objects)
    redis = one(objects, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    limit = _mebibytes(redis["resources"]["limits"]["memory"])
    assert limit >= 2 * _mebibytes(env["SF_MAXMEMORY"]) + 64


def test_metrics_have_a_port_the_route_never_sends_to() -> None:
    objects = render(
        {"httpRoute": {"enabled": True}, "gateway": {"create": True}}, api_versions=CLUSTER_APIS
    )
    ports = {p["name"]: p["port"] for p in one(objects, "Service", "-app")["spec"]["ports"]}
    assert ports == {"http": 80, "metrics": 9090}
    [rule] = one(objects, "HTTPRoute")["spec"]["rules"]
    assert [b["port"] for b in rule["backendRefs"]] == [80]
    assert app_env(objects)["SESSIONFLEET_METRICS_PORT"] == "9090"
    policy = one(objects, "NetworkPolicy", "-app")["spec"]["ingress"]
    assert policy[1]["ports"] == [{"port": "metrics", "protocol": "TCP"}]


def test_production_defaults_create_no_load_test_users() -> None:
    objects = render({})
    env = app_env(objects)
    assert "SESSIONFLEET_LOADTEST_USERS" not in env
    test_pod = one(objects, "Pod", "-test-login")
    assert "env" not in test_pod["spec"]["containers"][0]  # readiness only, no login


def test_persistence_keeps_sentinel_state_with_the_data() -> None:
    spec = one(render({"redis": {"persistence": {"enabled": True}}}), "StatefulSet")["spec"]
    sentinel = next(c for c in spec["template"]["spec"]["containers"] if c["name"] == "sentinel")
    assert {"name": "data", "mountPath": "/sentinel-data", "subPath": "sentinel"} in sentinel[
        "volumeMounts"
    ]
    env = {e["name"]: e.get("value") for e in sentinel["env"]}
    assert env["SF_SENTINEL_KEEP_STATE"] == "yes"


def test_every_container_of_a_redis_pod_acts_on_sigterm_or_hands_over() -> None:
    spec = one(render({}), "StatefulSet")["spec"]["template"]["spec"]
    hooks = {
        c["name"]: c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        for c in spec["containers"]
    }
    assert hooks == {
        "redis": ["sh", "-c", "SF_LOG_FILE=/proc/1/fd/2 exec sh /config/redis-prestop.sh"],
        "sentinel": ["sh", "-c", "SF_LOG_FILE=/proc/1/fd/2 exec sh /config/sentinel-prestop.sh"],
        "watch": None,  # exits on SIGTERM (files/redis-watch.sh traps it)
    }
    env = redis_env(render({}))
    assert int(env["SF_PRESTOP_SECONDS"]) < spec["terminationGracePeriodSeconds"]
