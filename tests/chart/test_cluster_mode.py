"""redis.mode: cluster, rendered by the real Helm engine: one StatefulSet per shard spread by
the scheduler, stable announced names the app is given, the bootstrap hook Job, per-shard
disruption budgets, the cluster bus in the NetworkPolicy, a strict schema. And Sentinel mode
exactly as the chart rendered it before cluster mode existed."""

from __future__ import annotations

import copy
import itertools
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_python.chart import lint

from harness.helm import CLUSTER_APIS, render, render_files

from .test_chart import KUBE_VERSIONS, MATRIX

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sessionfleet"
CLUSTER: dict[str, Any] = {"redis": {"mode": "cluster"}}
HEADLESS = "sf-sessionfleet-redis-headless.shop.svc.cluster.local"
SHARD_LABEL = "sessionfleet.io/redis-shard"


def merged(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def cluster(extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return render(merged(CLUSTER, extra or {}), api_versions=CLUSTER_APIS)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    [found] = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def app_env(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return env_of(of_kind(objects, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0])


def shard_sets(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return of_kind(objects, "StatefulSet")


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return cluster()


# --- Sentinel mode is untouched --------------------------------------------------------------


SENTINEL_CASES = [name for name, values in MATRIX.items() if "mode" not in values.get("redis", {})]


@pytest.mark.parametrize("case", SENTINEL_CASES)
def test_mode_sentinel_is_the_default_and_renders_as_before_cluster_mode(case: str) -> None:
    values = MATRIX[case]
    unset = render_files(values, api_versions=CLUSTER_APIS)
    explicit = render_files(
        merged(values, {"redis": {"mode": "sentinel"}}), api_versions=CLUSTER_APIS
    )
    assert unset == explicit
    cluster_only = [path for path, text in unset.items() if "cluster" in path and text.strip()]
    assert cluster_only == []  # nothing of cluster mode leaks into a Sentinel install


# --- what cluster mode renders -----------------------------------------------------------------


def test_cluster_mode_is_lint_clean_and_valid_on_the_oldest_and_newest_kubernetes() -> None:
    # Every version in between: test_chart.py's matrix has a redis-cluster case (slow).
    values = merged(CLUSTER, {"redis": {"exporter": {"enabled": True}}})
    report = lint(CHART, copy.deepcopy(values), strict=True, namespace="shop")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []
    for obj in render(values):
        for version in (KUBE_VERSIONS[0], KUBE_VERSIONS[-1]):
            kubernetes_validate.validate(obj, version, strict=True)


def test_one_statefulset_per_shard_and_nothing_of_sentinel(default: list[dict[str, Any]]) -> None:
    sets = shard_sets(default)
    assert [s["metadata"]["name"] for s in sets] == [
        f"sf-sessionfleet-redis-shard-{i}" for i in range(3)
    ]
    for shard, statefulset in enumerate(sets):
        spec = statefulset["spec"]
        assert spec["replicas"] == 2  # a master and replicasPerShard
        assert spec["serviceName"] == "sf-sessionfleet-redis-headless"
        selector = spec["selector"]["matchLabels"]
        assert selector[SHARD_LABEL] == str(shard)
        assert selector.items() <= spec["template"]["metadata"]["labels"].items()
        containers = spec["template"]["spec"]["containers"]
        assert [c["name"] for c in containers] == ["redis"]
        assert containers[0]["command"] == ["sh", "/config/cluster-start.sh"]
        # nodes.conf is the node's identity: on a volume even without persistence.
        assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
        assert env_of(containers[0])["SF_PERSISTENCE"] == "no"
    for mine, other in itertools.permutations(sets, 2):  # none selects another one's pods
        pod_labels = other["spec"]["template"]["metadata"]["labels"]
        assert not mine["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    rendered = str(default)
    assert "sentinel" not in rendered.lower().replace("sentinel-password", "")
    headless = named(default, "Service", "sf-sessionfleet-redis-headless")["spec"]
    assert [p["port"] for p in headless["ports"]] == [6379, 16379]
    assert headless["publishNotReadyAddresses"] is True
    assert headless["selector"].items() <= sets[0]["spec"]["template"]["metadata"]["labels"].items()


def test_configmap_ships_the_cluster_files_byte_for_byte(default: list[dict[str, Any]]) -> None:
    data = named(default, "ConfigMap", "sf-sessionfleet-redis-config")["data"]
    expected = {p.name: p.read_text() for p in (CHART / "files" / "cluster").iterdir()}
    expected["redis.conf"] = (CHART / "files" / "redis.conf").read_text()
    assert data == expected


def test_pods_announce_the_names_the_app_and_the_job_use(default: list[dict[str, Any]]) -> None:
    announced = []
    for statefulset in shard_sets(default):
        env = env_of(statefulset["spec"]["template"]["spec"]["containers"][0])
        assert env["SF_ANNOUNCE_HOST"] == f"$(POD_NAME).{HEADLESS}"
        assert env["SF_POD_IP"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        name = statefulset["metadata"]["name"]
        announced.append([f"{name}-{i}.{HEADLESS}:6379" for i in range(2)])
    app = app_env(default)
    assert app["SESSIONFLEET_REDIS_CLUSTER_NODES"] == ",".join(
        host for shard in announced for host in shard
    )
    assert app["SESSIONFLEET_REDIS_PASSWORD_FILE"] == "/secrets/redis/redis-password"
    assert app["SESSIONFLEET_REDIS_WAIT_REPLICAS"] == "1"
    for sentinel_only in (
        "SESSIONFLEET_REDIS_SENTINELS",
        "SESSIONFLEET_REDIS_MASTER_NAME",
        "SESSIONFLEET_SENTINEL_PASSWORD_FILE",
    ):
        assert sentinel_only not in app
    shards = " ".join(",".join(shard) for shard in announced)
    for job in [j for j in of_kind(default, "Job") if "-redis-cluster-" in j["metadata"]["name"]]:
        assert env_of(job["spec"]["template"]["spec"]["containers"][0])["SF_SHARDS"] == shards


def test_a_shards_copies_never_share_a_node_and_spread_over_zones(
    default: list[dict[str, Any]],
) -> None:
    for statefulset in shard_sets(default):
        spec = statefulset["spec"]["template"]["spec"]
        shard = statefulset["spec"]["selector"]["matchLabels"]
        [term] = spec["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == shard
        spread = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
        zone = spread["topology.kubernetes.io/zone"]
        assert zone["whenUnsatisfiable"] == "ScheduleAnyway"
        assert zone["labelSelector"]["matchLabels"] == shard
        every_shard = spread["kubernetes.io/hostname"]["labelSelector"]["matchLabels"]
        assert SHARD_LABEL not in every_shard and every_shard.items() <= shard.items()


def test_preferred_spread_lets_a_small_cluster_schedule_a_shard() -> None:
    for statefulset in shard_sets(cluster({"redis": {"cluster": {"spread": "preferred"}}})):
        anti = statefulset["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in anti
        [term] = anti["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["weight"] == 100
        assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_each_shard_has_its_own_disruption_budget(default: list[dict[str, Any]]) -> None:
    budgets = [
        b for b in of_kind(default, "PodDisruptionBudget") if "-redis" in b["metadata"]["name"]
    ]
    assert len(budgets) == 3
    for budget, statefulset in zip(budgets, shard_sets(default), strict=True):
        assert budget["spec"]["maxUnavailable"] == 1
        assert (
            budget["spec"]["selector"]["matchLabels"]
            == statefulset["spec"]["selector"]["matchLabels"]
        )


def test_network_policy_opens_the_cluster_bus_between_redis_pods_only(
    default: list[dict[str, Any]],
) -> None:
    redis_policy = named(default, "NetworkPolicy", "sf-sessionfleet-redis")["spec"]
    clients, bus = redis_policy["ingress"]
    components = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in clients["from"]
    }
    assert components == {"app", "redis", "redis-bootstrap"}
    assert clients["ports"] == [{"port": 6379, "protocol": "TCP"}]
    assert [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in bus["from"]
    ] == ["redis"]
    assert bus["ports"] == [{"port": 16379, "protocol": "TCP"}]
    to_redis = redis_policy["egress"][1]
    assert to_redis["ports"] == [
        {"port": 6379, "protocol": "TCP"},
        {"port": 16379, "protocol": "TCP"},
    ]
    app_policy = named(default, "NetworkPolicy", "sf-sessionfleet-app")["spec"]
    assert {"port": 26379, "protocol": "TCP"} not in app_policy["egress"][1]["ports"]
    job = named(default, "Job", "sf-sessionfleet-redis-cluster-bootstrap")
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert any(
        p["podSelector"]["matchLabels"].items() <= job_labels.items() for p in clients["from"]
    )


def test_the_bootstrap_runs_on_install_upgrade_and_before_a_rollback(
    default: list[dict[str, Any]],
) -> None:
    jobs = {
        j["metadata"]["name"]: j
        for j in of_kind(default, "Job")
        if "-cluster-" in j["metadata"]["name"]
    }
    create = jobs.pop("sf-sessionfleet-redis-cluster-create")
    # Not a post-install hook: Helm runs those only after --wait saw the app ready, and the app
    # is ready only once this Job has made the cluster.
    assert "helm.sh/hook" not in create["metadata"].get("annotations", {})
    hooks = {name: j["metadata"]["annotations"]["helm.sh/hook"] for name, j in jobs.items()}
    assert hooks == {
        "sf-sessionfleet-redis-cluster-bootstrap": "post-upgrade",
        "sf-sessionfleet-redis-cluster-precheck": "pre-rollback",
    }
    for job in [create, *jobs.values()]:
        spec = job["spec"]["template"]["spec"]
        [container] = spec["containers"]
        assert container["image"] == "redis:7.2.7-bookworm"  # redis-cli and sh
        assert container["command"] == ["sh", "/config/cluster-bootstrap.sh"]
        assert env_of(container)["SF_BOOTSTRAP_TIMEOUT"] == "300"
        assert job["spec"]["activeDeadlineSeconds"] > 300  # the script's own deadline first
        assert {v["name"] for v in spec["volumes"]} == {"config", "secrets", "tmp"}
    precheck = jobs["sf-sessionfleet-redis-cluster-precheck"]["spec"]["template"]["spec"]
    assert env_of(precheck["containers"][0])["SF_CHECK_ONLY"] == "yes"
    for name in ("sf-sessionfleet-redis-cluster-bootstrap", "sf-sessionfleet-redis-cluster-create"):
        assert "SF_CHECK_ONLY" not in env_of(
            named(default, "Job", name)["spec"]["template"]["spec"]["containers"][0]
        )
    annotations = jobs["sf-sessionfleet-redis-cluster-bootstrap"]["metadata"]["annotations"]
    assert annotations["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"


def test_the_install_job_is_left_out_of_upgrades() -> None:
    """So Helm deletes it on the first upgrade; the post-upgrade hook takes over."""
    path = "sessionfleet/templates/redis-cluster-bootstrap-job.yaml"
    installed = render_files(CLUSTER, api_versions=CLUSTER_APIS)[path]
    upgraded = render_files(CLUSTER, api_versions=CLUSTER_APIS, upgrade=True)[path]
    assert "name: sf-sessionfleet-redis-cluster-create" in installed
    assert "-cluster-create" not in upgraded
    assert "name: sf-sessionfleet-redis-cluster-bootstrap" in upgraded


def test_cluster_values_reach_the_pods() -> None:
    objects = cluster(
        {"redis": {"cluster": {"shards": 5, "replicasPerShard": 2, "nodeTimeoutMs": 7000}}}
    )
    sets = shard_sets(objects)
    assert len(sets) == 5 and {s["spec"]["replicas"] for s in sets} == {3}
    env = env_of(sets[0]["spec"]["template"]["spec"]["containers"][0])
    assert env["SF_CLUSTER_NODE_TIMEOUT"] == "7000"
    assert len(app_env(objects)["SESSIONFLEET_REDIS_CLUSTER_NODES"].split(",")) == 15
    persisted = shard_sets(cluster({"redis": {"persistence": {"enabled": True, "size": "5Gi"}}}))
    claim = persisted[0]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert claim["resources"]["requests"]["storage"] == "5Gi"
    assert (
        env_of(persisted[0]["spec"]["template"]["spec"]["containers"][0])["SF_PERSISTENCE"] == "yes"
    )


@pytest.mark.parametrize(
    ("redis", "budget"),
    [
        ({}, "28"),  # 4 x 5 s + 8: a second election fits
        ({"cluster": {"nodeTimeoutMs": 7000}}, "36"),
        ({"handoverSeconds": 33}, "33"),  # a longer budget is kept
    ],
)
def test_the_prestop_has_room_for_a_second_election(redis: dict[str, Any], budget: str) -> None:
    [shard, *_] = shard_sets(cluster({"redis": redis}))
    pod = shard["spec"]["template"]["spec"]
    assert env_of(pod["containers"][0])["SF_HANDOVER_SECONDS"] == budget
    assert pod["terminationGracePeriodSeconds"] > int(budget)


def test_names_fit_with_the_longest_release_and_two_digit_shards() -> None:
    objects = cluster({"fullnameOverride": "x" * 60, "redis": {"cluster": {"shards": 12}}})
    for statefulset in shard_sets(objects):
        name = statefulset["metadata"]["name"]
        assert len(name) <= 52  # + "-<10-character revision hash>" in a label
        assert len(f"{name}-5") <= 63  # pod names (DNS labels)
    env = app_env(objects)["SESSIONFLEET_REDIS_CLUSTER_NODES"]
    assert all(len(host.split(".")[0]) <= 63 for host in env.split(","))


@pytest.mark.parametrize(
    "values",
    [
        {"redis": {"mode": "clustr"}},
        {"redis": {"mode": "cluster", "cluster": {"shards": 2}}},
        {"redis": {"mode": "cluster", "cluster": {"replicasPerShard": 0}}},
        {"redis": {"mode": "cluster", "cluster": {"replicas": 1}}},  # unknown key
        {"redis": {"mode": "cluster", "cluster": {"spread": "hard"}}},
        {"redis": {"mode": "cluster", "cluster": {"nodeTimeoutMs": 0}}},
        {"redis": {"mode": "cluster", "cluster": {"shards": "3"}}},
    ],
)
def test_schema_rejects_bad_cluster_values(values: dict[str, Any]) -> None:
    report = lint(CHART, values, strict=True, namespace="shop")
    assert report["errors"], values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"waitReplicas": 2}}, "no commit could ever be acknowledged"),
        ({"redis": {"port": 60000}}, "cluster bus listens on redis.port"),
    ],
)
def test_values_no_cluster_could_run_are_refused(values: dict[str, Any], message: str) -> None:
    with pytest.raises(Exception, match=message):
        cluster(values)


# --- the live-cluster guards, with lookup's answer simulated --------------------------------


@pytest.fixture(scope="module")
def chart_with_simulated_lookup(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart whose guard reads the StatefulSets `lookup` would find from the
    values (`liveStatefulSets`): offline, lookup finds nothing, and the guard's logic would
    run for the first time on someone's cluster."""
    chart = tmp_path_factory.mktemp("guard") / "sessionfleet"
    shutil.copytree(CHART, chart)
    helpers = chart / "templates" / "_redis-cluster.tpl"
    live = 'lookup "apps/v1" "StatefulSet" .Release.Namespace ""'
    assert helpers.read_text().count(live) == 1
    helpers.write_text(helpers.read_text().replace(live, '(dict "items" .Values.liveStatefulSets)'))
    (chart / "values.schema.json").unlink()  # it would refuse the extra key
    return chart


@pytest.mark.parametrize(
    ("mode", "shards", "live", "refused"),
    [
        (
            "cluster",
            3,
            ["sf-sessionfleet-redis-shard-0", "sf-sessionfleet-redis-shard-3"],
            "shrinking",
        ),
        ("cluster", 4, [f"sf-sessionfleet-redis-shard-{i}" for i in range(4)], None),
        ("cluster", 12, ["sf-sessionfleet-redis-shard-11"], None),
        ("cluster", 3, ["sf-sessionfleet-redis"], "switching modes"),
        ("cluster", 3, ["other-sessionfleet-redis-shard-7", "sf-sessionfleet-redis-shard-x"], None),
        ("sentinel", 3, ["sf-sessionfleet-redis-shard-0"], "switching modes"),
        ("sentinel", 3, ["sf-sessionfleet-redis"], None),
    ],
)
def test_live_guards_refuse_shrinking_and_switching_modes(
    chart_with_simulated_lookup: Path, mode: str, shards: int, live: list[str], refused: str | None
) -> None:
    values = {
        "redis": {"mode": mode, "cluster": {"shards": shards}},
        "liveStatefulSets": [{"metadata": {"name": name}} for name in live],
    }
    if refused is None:
        render_files(values, chart_dir=chart_with_simulated_lookup)
    else:
        with pytest.raises(Exception, match=refused):
            render_files(values, chart_dir=chart_with_simulated_lookup)
