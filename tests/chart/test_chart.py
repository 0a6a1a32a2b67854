"""The Helm chart, rendered and linted by the real Helm engine (helm-python-sdk), every object
validated against the Kubernetes schemas of 1.29 up to the newest available."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_python.chart import lint

from harness.helm import CLUSTER_APIS
from harness.helm import render as support_render

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sessionfleet"
KUBE_VERSIONS = [f"1.{minor}" for minor in range(29, 38)]
CRD_KINDS = {
    "HTTPRoute",
    "Gateway",
    "ServiceMonitor",
    "PrometheusRule",
}  # no schema in kubernetes-validate

MATRIX: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress-tls": {
        "httpRoute": {"enabled": False},
        "ingress": {
            "enabled": True,
            "className": "traefik",
            "host": "shop.example.com",
            "tls": {"enabled": True, "secretName": "shop-tls"},
        },
    },
    "gateway-tls": {
        "gateway": {
            "create": True,
            "tls": {"enabled": True, "certificateRefs": [{"name": "gw-tls"}]},
        },
        "httpRoute": {"enabled": True, "hostnames": ["shop.example.com"]},
    },
    "hpa": {"app": {"autoscaling": {"enabled": True, "maxReplicas": 12}}},
    "persistence": {
        "redis": {"persistence": {"enabled": True, "size": "2Gi", "storageClass": "fast"}}
    },
    "external-sentinel": {
        "redis": {"enabled": False},
        "externalRedis": {"sentinels": "s1:26379,s2:26379,s3:26379", "existingSecret": "ext-redis"},
    },
    "external-url": {"redis": {"enabled": False}, "externalRedis": {"url": "redis://cache:6379/0"}},
    "production-users": {"loadtest": {"users": 0}, "users": {"existingSecret": "sf-users"}},
    "no-networkpolicy": {"networkPolicy": {"enabled": False}},
    "redis-cluster": {"redis": {"mode": "cluster", "exporter": {"enabled": True}}},
    "observability": {
        "app": {"otel": {"endpoint": "http://otel-collector.observability:4318"}},
        "redis": {"exporter": {"enabled": True}},
        "metrics": {"serviceMonitor": {"enabled": True}},
        "prometheusRule": {
            "enabled": True,
            "labels": {"release": "kube-prometheus-stack"},
            "alertLabels": {"team": "shop"},
            "runbookBaseUrl": "https://runbooks.example.com/sessionfleet",
        },
    },
}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    """As installed on a cluster that serves the Gateway API and the Prometheus Operator's
    kinds (tests/chart/test_install_anywhere.py renders without them)."""
    return support_render(values, api_versions=CLUSTER_APIS)


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str, suffix: str = "") -> dict[str, Any]:
    [found] = [o for o in by_kind(objects, kind) if o["metadata"]["name"].endswith(suffix)]
    return found


def pod_specs(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    specs = [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet")
    ]
    return specs + [(o["metadata"]["name"], o["spec"]) for o in by_kind(objects, "Pod")]


@pytest.fixture(scope="module", params=list(MATRIX))
def case(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(MATRIX[request.param])


@pytest.fixture(scope="module")
def default() -> list[dict[str, Any]]:
    return render({})


@pytest.mark.parametrize("name", list(MATRIX))
def test_strict_lint_is_clean(name: str) -> None:
    report = lint(CHART, copy.deepcopy(MATRIX[name]), strict=True, namespace="shop")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] > 1]  # 1 = info
    assert problems == []


def _validate(objects: list[dict[str, Any]], versions: list[str]) -> None:
    for obj in objects:
        if obj["kind"] in CRD_KINDS:
            continue
        for version in versions:
            kubernetes_validate.validate(obj, version, strict=True)


def test_every_object_validates_on_the_oldest_and_newest_kubernetes(
    case: tuple[str, list[dict[str, Any]]],
) -> None:
    _validate(case[1], [KUBE_VERSIONS[0], KUBE_VERSIONS[-1]])


@pytest.mark.slow  # the versions in between: most of the chart suite's time (make test runs it)
def test_every_object_validates_on_every_kubernetes_version_in_between(
    case: tuple[str, list[dict[str, Any]]],
) -> None:
    _validate(case[1], KUBE_VERSIONS[1:-1])


def test_gateway_api_objects_are_well_formed(case: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = case
    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    for route in by_kind(objects, "HTTPRoute"):
        assert route["apiVersion"] == "gateway.networking.k8s.io/v1"
        assert route["spec"]["parentRefs"]
        for rule in route["spec"]["rules"]:
            for ref in rule["backendRefs"]:
                service = services[ref["name"]]
                assert ref["port"] in [p["port"] for p in service["spec"]["ports"]]
    for gateway in by_kind(objects, "Gateway"):
        assert gateway["spec"]["gatewayClassName"]
        for listener in gateway["spec"]["listeners"]:
            assert listener["protocol"] in ("HTTP", "HTTPS")
            if listener["protocol"] == "HTTPS":
                assert listener["tls"]["certificateRefs"]


def test_every_container_is_locked_down(case: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = case
    for name, spec in pod_specs(objects):
        assert spec["automountServiceAccountToken"] is False, name
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert security["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert security["capabilities"]["drop"] == ["ALL"], (name, container["name"])
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), (name, container["name"])
            assert "memory" in resources["limits"], (name, container["name"])


def test_long_running_containers_have_probes(case: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = case
    for obj in by_kind(objects, "Deployment") + by_kind(objects, "StatefulSet"):
        for container in obj["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, container["name"]


def test_app_rolls_without_losing_capacity(default: list[dict[str, Any]]) -> None:
    deployment = one(default, "Deployment")
    assert deployment["spec"]["replicas"] >= 3
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = deployment["spec"]["template"]["spec"]
    [app] = spec["containers"]
    assert app["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert app["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert app["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sleep = int(app["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > sleep + 25  # + gunicorn's graceful timeout
    keys = {c["topologyKey"]: c["whenUnsatisfiable"] for c in spec["topologySpreadConstraints"]}
    assert keys == {
        "kubernetes.io/hostname": "DoNotSchedule",
        "topology.kubernetes.io/zone": "ScheduleAnyway",
    }
    replica_env = next(e for e in app["env"] if e["name"] == "SESSIONFLEET_REPLICA_NAME")
    assert replica_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_hpa_replaces_fixed_replicas() -> None:
    objects = render(MATRIX["hpa"])
    assert "replicas" not in one(objects, "Deployment")["spec"]
    hpa = one(objects, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 12)


def test_disruption_budgets_cover_app_and_redis(default: list[dict[str, Any]]) -> None:
    budgets = {p["metadata"]["name"]: p["spec"] for p in by_kind(default, "PodDisruptionBudget")}
    assert set(budgets) == {"sf-sessionfleet-app", "sf-sessionfleet-redis"}
    for spec in budgets.values():
        assert spec["maxUnavailable"] == 1
    for workload in by_kind(default, "Deployment") + by_kind(default, "StatefulSet"):
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        selectors = [b["selector"]["matchLabels"] for b in budgets.values()]
        assert any(s.items() <= pod_labels.items() for s in selectors), workload["metadata"]["name"]


def test_redis_pods_never_share_a_node(default: list[dict[str, Any]]) -> None:
    redis = one(default, "StatefulSet")
    assert redis["spec"]["replicas"] == 3
    required = redis["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]
    [term] = required
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert (
        term["labelSelector"]["matchLabels"].items()
        <= redis["spec"]["template"]["metadata"]["labels"].items()
    )


def test_redis_runs_the_shared_bootstrap_files(default: list[dict[str, Any]]) -> None:
    config = one(default, "ConfigMap", "-redis-config")
    for path in filter(Path.is_file, (CHART / "files").iterdir()):  # files/cluster/: cluster mode
        # Byte for byte: a block scalar that drops the final newline made a script append
        # `sentinel auth-pass` onto sentinel.conf's last line (Sentinel crash-looped).
        assert config["data"][path.name] == path.read_text(), path.name
    spec = one(default, "StatefulSet")["spec"]["template"]["spec"]
    commands = {c["name"]: c["command"] for c in spec["containers"]}
    assert commands == {
        "redis": ["sh", "/config/redis-bootstrap.sh"],
        "sentinel": ["sh", "/config/sentinel-bootstrap.sh"],
        "watch": ["sh", "/config/redis-watch.sh"],
    }
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    assert (
        env["SF_ANNOUNCE_HOST"]
        == "$(POD_NAME).sf-sessionfleet-redis-headless.shop.svc.cluster.local."
    )
    assert (
        env["SF_INITIAL_MASTER"]
        == "sf-sessionfleet-redis-0.sf-sessionfleet-redis-headless.shop.svc.cluster.local.:6379"
    )
    assert len(env["SF_SENTINELS"].split()) == 3


def test_redis_pods_carry_a_config_checksum(default: list[dict[str, Any]]) -> None:
    annotations = one(default, "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    again = one(render({}), "StatefulSet")["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/config"]) == 64
    assert annotations["checksum/config"] == again["checksum/config"]  # stable: no needless rolls


def test_sentinel_values_reach_the_pods() -> None:
    redis = one(render({"redis": {"sentinel": {"downAfterMilliseconds": 5000}}}), "StatefulSet")
    env = redis["spec"]["template"]["spec"]["containers"][1]["env"]
    extra = next(e["value"] for e in env if e["name"] == "SF_SENTINEL_EXTRA_CONFIG")
    assert "down-after-milliseconds sessionfleet 5000" in extra


def test_secrets_are_generated_in_the_cluster_never_rendered() -> None:
    values = {"loadtest": {"users": 10}}
    first, second = render(values), render(values)
    assert by_kind(first, "Secret") == []  # no password in any rendered manifest
    assert first == second  # so a GitOps tool re-rendering changes nothing, rotates nothing
    job = one(first, "Job", "-secrets")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "sf-sessionfleet-loadtest=password",
        "sf-sessionfleet-redis-auth=redis-password,sentinel-password",
    ]
    [rule_create, rule_named] = one(first, "Role", "-secrets")["rules"]
    assert rule_create["verbs"] == ["create"]
    assert rule_named["resourceNames"] == ["sf-sessionfleet-loadtest", "sf-sessionfleet-redis-auth"]
    cleanup = one(first, "Job", "-secrets-cleanup")  # `helm uninstall` leaves nothing behind
    assert cleanup["metadata"]["annotations"]["helm.sh/hook"] == "post-delete"
    assert cleanup["spec"]["template"]["spec"]["containers"][0]["args"][0] == "--delete"


def test_passwords_of_persisted_data_outlive_an_uninstall() -> None:
    objects = render({"redis": {"persistence": {"enabled": True}}})
    assert [o["metadata"]["name"] for o in by_kind(objects, "Job")] == ["sf-sessionfleet-secrets"]


def test_existing_secrets_are_used_as_given() -> None:
    objects = render(
        {
            "redis": {"auth": {"existingSecret": "mine"}},
            "loadtest": {"users": 10, "existingSecret": "lt"},
        }
    )
    assert by_kind(objects, "Secret") == by_kind(objects, "Job") == []
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {v["secret"]["secretName"] for v in volumes if "secret" in v} == {"mine", "lt"}


def test_network_policies_isolate_app_and_redis(default: list[dict[str, Any]]) -> None:
    app = one(default, "NetworkPolicy", "-app")["spec"]
    redis = one(default, "NetworkPolicy", "-redis")["spec"]
    assert app["policyTypes"] == redis["policyTypes"] == ["Ingress", "Egress"]
    app_in, scrape = app["ingress"]
    ingress_peer = {"namespaceSelector": {"matchLabels": {"sessionfleet.io/ingress": "true"}}}
    assert ingress_peer in app_in["from"]
    monitoring = {"namespaceSelector": {"matchLabels": {"sessionfleet.io/monitoring": "true"}}}
    assert scrape["from"] == [monitoring]
    [redis_in] = redis["ingress"]
    components = {
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in redis_in["from"]
    }
    assert components == {"app", "redis"}
    for spec in (app, redis):
        assert any(
            {"port": 53, "protocol": "UDP"} in rule.get("ports", []) for rule in spec["egress"]
        )


def test_services_select_their_pods(default: list[dict[str, Any]]) -> None:
    pods = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in by_kind(default, "Deployment") + by_kind(default, "StatefulSet")
    }
    for service in by_kind(default, "Service"):
        selector = service["spec"]["selector"]
        assert sum(selector.items() <= labels.items() for labels in pods.values()) == 1


def test_helm_test_logs_in_through_the_service(default: list[dict[str, Any]]) -> None:
    pod = one(default, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    [container] = pod["spec"]["containers"]
    assert container["command"][:3] == ["python", "-m", "app.ops.smoke"]
    assert container["command"][3] == "http://sf-sessionfleet-app:80"


def test_external_redis_renders_no_redis_objects() -> None:
    objects = render(MATRIX["external-sentinel"])
    assert by_kind(objects, "StatefulSet") == [] and by_kind(objects, "ConfigMap") == []
    env = {
        e["name"]: e.get("value")
        for e in one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["SESSIONFLEET_REDIS_SENTINELS"] == "s1:26379,s2:26379,s3:26379"


def test_observability_wiring() -> None:
    objects = render(MATRIX["observability"])
    app = one(objects, "Deployment")["spec"]["template"]
    env = {e["name"]: e for e in app["spec"]["containers"][0]["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"]["value"] == "http://otel-collector.observability:4318"
    assert env["K8S_NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert app["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    redis = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    exporter = next(c for c in redis["containers"] if c["name"] == "exporter")
    assert exporter["env"][1]["valueFrom"]["secretKeyRef"]["key"] == "redis-password"
    monitor = one(objects, "ServiceMonitor")
    assert [e.get("port") for e in monitor["spec"]["endpoints"]] == ["metrics", "metrics"]
    headless = one(objects, "Service", "-headless")
    assert "metrics" in [p["name"] for p in headless["spec"]["ports"]]


def test_tracing_is_off_unless_an_endpoint_is_set(default: list[dict[str, Any]]) -> None:
    env = {
        e["name"]
        for e in one(default, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert not any(name.startswith("OTEL_") for name in env)


@pytest.mark.parametrize(
    "values",
    [
        {"app": {"replica": 3}},  # typo
        {"redis": {"persistance": {"enabled": True}}},
        {"app": {"replicas": 0}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"redis": {"maxmemory": "lots"}},
        {"externalRedis": {"sentinels": "no-port"}},
        {"prometheusRule": {"enable": True}},
        {"prometheusRule": {"thresholds": {"unavailableRatio": 5}}},
        {"prometheusRule": {"runbookBaseUrl": "docs/observability.md"}},
    ],
)
def test_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    report = lint(CHART, values, strict=True, namespace="shop")
    assert report["errors"], values
