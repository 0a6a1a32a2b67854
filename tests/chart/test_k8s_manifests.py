"""Static checks of what only a real cluster can run: the kind config, the observability
manifests, and the values files the Make targets pass to Helm."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from helm_python.chart import Chart, lint

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


@pytest.mark.parametrize("name", ["namespace.yaml", "jaeger.yaml", "otel-collector.yaml"])
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
    assert listed == present


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
    rendered = Chart.load(CHART).render(values, name="sf", namespace="sessionfleet")
    objects = [
        d
        for path, text in rendered.items()
        if path.endswith(".yaml")
        for d in yaml.safe_load_all(text)
        if isinstance(d, dict)
    ]
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
