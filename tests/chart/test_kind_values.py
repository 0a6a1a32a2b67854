"""The values `make deploy` gives the chart on kind (k8s/kind/values-kind.yaml plus what
scripts/kind.sh adds for kind's docker network), rendered and linted by the real Helm engine."""

from __future__ import annotations

import copy
import subprocess
from typing import Any

import yaml
from helm_python.chart import Chart, lint

from tests.unit.fake_commands import ROOT

CHART = ROOT / "helm" / "sessionfleet"
SUBNET = "172.19.0.0/16"  # not kind's usual 172.18.0.0/16: the script must not assume it


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of two values files: maps deep-merged, everything else replaced."""
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def kind_values() -> dict[str, Any]:
    script = subprocess.run(
        ["bash", "-c", f"source scripts/kind.sh; kind_values {SUBNET}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    base = yaml.safe_load((ROOT / "k8s" / "kind" / "values-kind.yaml").read_text())
    return merged(base, yaml.safe_load(script.stdout))


def test_kind_values_lint_strictly() -> None:
    report = lint(CHART, kind_values(), strict=True, namespace="sessionfleet")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > 1] == []


def test_gateway_network_reaches_the_app_and_is_trusted() -> None:
    rendered = Chart.load(CHART).render(kind_values(), name="sf", namespace="sessionfleet")
    objects = [
        doc
        for path, text in rendered.items()
        if not path.endswith("NOTES.txt")
        for doc in yaml.safe_load_all(text)
        if doc
    ]
    [policy] = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "sf-sessionfleet-app"
    ]
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule.get("from", [])]
    assert {"ipBlock": {"cidr": SUBNET}} in peers
    [deployment] = [o for o in objects if o["kind"] == "Deployment"]
    [app] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    env = {e["name"]: e.get("value") for e in app["env"]}
    assert env["SESSIONFLEET_TRUSTED_PROXIES"] == f"{SUBNET},10.244.0.0/16"
