"""Static checks of what only a real cluster can run: the kind config, the observability
manifests (rendered by kustomize when kubectl is here), and the values files the Make targets
pass to Helm."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart, lint

from harness.helm import GATEWAY_APIS, render

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "sessionfleet"
OBSERVABILITY = ROOT / "k8s" / "observability"


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_kind_cluster_has_three_workers_in_three_zones() -> None:
    [config] = documents(ROOT / "k8s" / "kind" / "cluster.yaml")
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in config["nodes"]]
    assert roles == ["control-plane", "worker", "worker", "worker"]
    zones = {node["labels"]["topology.kubernetes.io/zone"] for node in config["nodes"][1:]}
    assert len(zones) == 3
    assert len({node["image"] for node in config["nodes"]}) == 1  # one pinned node image


MANIFESTS = [
    "namespace.yaml",
    "jaeger.yaml",
    "otel-collector.yaml",
    "prometheus.yaml",
    "grafana.yaml",
]
KUBECTL = shutil.which("kubectl")


@pytest.mark.parametrize("name", MANIFESTS)
def test_observability_manifests_validate(name: str) -> None:
    for obj in documents(OBSERVABILITY / name):
        for version in ("1.29", "1.34", "1.37"):
            kubernetes_validate.validate(obj, version, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    [kustomization] = documents(OBSERVABILITY / "kustomization.yaml")
    listed = set(kustomization["resources"])
    present = {p.name for p in OBSERVABILITY.glob("*.yaml")} - {
        "kustomization.yaml",
        "values-otel.yaml",
    }
    assert listed == present == set(MANIFESTS)
    generated = [f for g in kustomization["configMapGenerator"] for f in g["files"]]
    assert generated == ["dashboards/sessionfleet.json"]
    assert all((OBSERVABILITY / f).is_file() for f in generated)


@pytest.mark.skipif(KUBECTL is None, reason="kubectl missing: kustomize render not checked")
def test_kustomize_output_validates_and_wires_the_dashboard() -> None:
    assert KUBECTL is not None
    rendered = subprocess.run(
        [KUBECTL, "kustomize", str(OBSERVABILITY)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    for obj in objects:
        kubernetes_validate.validate(obj, "1.34", strict=True)
        if obj["kind"] != "Namespace" and not obj["kind"].startswith("ClusterRole"):
            assert obj["metadata"]["namespace"] == "observability", obj["metadata"]["name"]
    config_maps = {o["metadata"]["name"]: o for o in objects if o["kind"] == "ConfigMap"}
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        for volume in deployment["spec"]["template"]["spec"].get("volumes", []):
            if "configMap" in volume:  # generated names (hash suffix) are followed
                assert volume["configMap"]["name"] in config_maps, volume
    [dashboards] = [c for n, c in config_maps.items() if n.startswith("grafana-dashboards-")]
    assert (
        dashboards["data"]["sessionfleet.json"]
        == (OBSERVABILITY / "dashboards" / "sessionfleet.json").read_text()
    )


def test_grafana_reads_the_prometheus_of_the_overlay() -> None:
    grafana = {d["kind"]: d for d in documents(OBSERVABILITY / "grafana.yaml")}
    provisioning = grafana["ConfigMap"]["data"]
    [source] = yaml.safe_load(provisioning["datasources.yaml"])["datasources"]
    [provider] = yaml.safe_load(provisioning["dashboards.yaml"])["providers"]
    prometheus = {d["kind"]: d for d in documents(OBSERVABILITY / "prometheus.yaml")}
    service = prometheus["Service"]
    port = service["spec"]["ports"][0]["port"]
    assert source["type"] == "prometheus"
    assert source["url"] == f"http://{service['metadata']['name']}.observability.svc:{port}"
    container = grafana["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert provider["options"]["path"] == mounts["dashboards"]
    env = {e["name"]: e for e in container["env"]}
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]["value"]
    assert home == f"{mounts['dashboards']}/sessionfleet.json"
    assert env["GF_SECURITY_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "grafana-admin"


def test_prometheus_scrapes_the_pods_the_chart_annotates() -> None:
    prometheus = {d["kind"]: d for d in documents(OBSERVABILITY / "prometheus.yaml")}
    config = yaml.safe_load(prometheus["ConfigMap"]["data"]["prometheus.yml"])
    [job] = config["scrape_configs"]
    relabel = job["relabel_configs"]
    keep = {r["source_labels"][0]: r["regex"] for r in relabel if r.get("action") == "keep"}
    targets = {r["target_label"] for r in relabel if "target_label" in r}
    assert {"namespace", "pod"} <= targets  # what the dashboard and the alerts select on
    rendered = Chart.load(CHART).render({}, name="sf", namespace="sessionfleet")
    app = next(
        d
        for path, text in rendered.items()
        if path.endswith("app-deployment.yaml")
        for d in yaml.safe_load_all(text)
        if d
    )
    pod = app["spec"]["template"]["metadata"]
    label = "__meta_kubernetes_pod_label_app_kubernetes_io_name"
    annotation = "__meta_kubernetes_pod_annotation_prometheus_io_scrape"
    assert pod["labels"]["app.kubernetes.io/name"] == keep[label]
    assert pod["annotations"]["prometheus.io/scrape"] == keep[annotation]
    # (Debian's promtool is built without Kubernetes discovery: it cannot check this file.)


def test_collector_forwards_otlp_to_jaeger() -> None:
    config_map = next(
        d for d in documents(OBSERVABILITY / "otel-collector.yaml") if d["kind"] == "ConfigMap"
    )
    config = yaml.safe_load(config_map["data"]["config.yaml"])
    assert set(config["receivers"]["otlp"]["protocols"]) == {"grpc", "http"}
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]
    jaeger = {p["port"] for p in documents(OBSERVABILITY / "jaeger.yaml")[1]["spec"]["ports"]}
    assert config["exporters"]["otlp/jaeger"]["endpoint"].endswith(":4317") and 4317 in jaeger


@pytest.mark.parametrize(
    "values_files",
    [
        ["k8s/kind/values-kind.yaml"],
        ["k8s/kind/values-kind.yaml", "k8s/observability/values-otel.yaml"],
    ],
)
def test_make_deploy_values_lint_and_render(values_files: list[str]) -> None:
    values: dict[str, Any] = {}
    for path in values_files:
        values = _merge(values, yaml.safe_load((ROOT / path).read_text()))
    values = _merge(
        values, {"networkPolicy": {"appIngressFrom": [{"ipBlock": {"cidr": "172.18.0.0/16"}}]}}
    )
    report = lint(CHART, copy.deepcopy(values), strict=True, namespace="sessionfleet")
    assert report["errors"] == []
    objects = render(values, api_versions=GATEWAY_APIS, namespace="sessionfleet")
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "Never"
    assert any(o["kind"] == "Gateway" for o in objects)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
