"""The values `make deploy` gives the chart on kind (k8s/kind/values-kind.yaml, plus the
offline route's Redis image from scripts/kind.sh), rendered and linted by the real Helm engine."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml
from helm_python.chart import lint

from harness.helm import CLUSTER_APIS, render
from tests.unit.fake_commands import ROOT

CHART = ROOT / "helm" / "sessionfleet"


def kind_values(*, offline: bool) -> dict[str, Any]:
    values = yaml.safe_load((ROOT / "k8s" / "kind" / "values-kind.yaml").read_text())
    if offline:
        script = subprocess.run(
            ["bash", "-c", "source scripts/kind.sh; offline_values"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        values.update(yaml.safe_load(script.stdout))  # a top-level key values-kind.yaml lacks
    return values


@pytest.mark.parametrize("offline", [False, True])
def test_kind_values_lint_strictly(offline: bool) -> None:
    report = lint(CHART, kind_values(offline=offline), strict=True, namespace="sessionfleet")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []


def test_the_gateway_is_traefiks_and_its_pods_are_the_trusted_proxies() -> None:
    objects = render(kind_values(offline=False), api_versions=CLUSTER_APIS)
    [gateway] = [o for o in objects if o["kind"] == "Gateway"]
    assert gateway["spec"]["gatewayClassName"] == "traefik"
    # Traefik serves a listener on the entry point of the same port (k8s/kind/addons).
    assert [listener["port"] for listener in gateway["spec"]["listeners"]] == [8000]
    [route] = [o for o in objects if o["kind"] == "HTTPRoute"]
    assert route["spec"]["parentRefs"][0]["name"] == gateway["metadata"]["name"]
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [app] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    cluster = yaml.safe_load((ROOT / "k8s" / "kind" / "cluster.yaml").read_text())
    assert env["SESSIONFLEET_TRUSTED_PROXIES"] == cluster["networking"]["podSubnet"]


def test_offline_values_run_the_locally_built_redis() -> None:
    objects = render(kind_values(offline=True), api_versions=CLUSTER_APIS)
    images = {
        c["image"]
        for o in objects
        if o["kind"] == "StatefulSet"
        for c in o["spec"]["template"]["spec"]["containers"]
    }
    assert images == {"sessionfleet/redis:bookworm"}
