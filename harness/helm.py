"""Rendering the chart through the real Helm engine (helm-python-sdk), with the API versions a
cluster would announce (`.Capabilities.APIVersions`): the SDK's `Chart.render` takes none, its
native render call does (the same options `helm template --api-versions` sets)."""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from helm_python import _native
from helm_python.chart import Chart

CHART = Path(__file__).resolve().parents[1] / "helm" / "sessionfleet"
PROMETHEUS_RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
GATEWAY_APIS = (
    "gateway.networking.k8s.io/v1/Gateway",
    "gateway.networking.k8s.io/v1/HTTPRoute",
)
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
# A cluster with the Gateway API and the Prometheus Operator installed.
CLUSTER_APIS = (*GATEWAY_APIS, SERVICE_MONITOR_API, PROMETHEUS_RULE_API)


def render_files(
    values: dict[str, Any],
    *,
    api_versions: Sequence[str] = (),
    namespace: str = "shop",
    release: str = "sf",
    chart_dir: Path = CHART,
    upgrade: bool = False,
) -> dict[str, str]:
    """Every rendered template by path (`chart_dir`: another copy of the chart, e.g. the one
    a branch started from; `upgrade`: as `helm upgrade` renders, .Release.IsUpgrade)."""
    chart = Chart.load(chart_dir)
    options: dict[str, Any] = {
        "name": release,
        "namespace": namespace,
        "api_versions": list(api_versions),
    }
    if upgrade:
        options |= {"is_install": False, "is_upgrade": True}
    rendered = _native.call_string(
        "helm_render", chart._raw(), json.dumps(copy.deepcopy(values)), json.dumps(options)
    )
    files: dict[str, str] = json.loads(rendered)
    return files


def render(
    values: dict[str, Any],
    *,
    api_versions: Sequence[str] = (),
    namespace: str = "shop",
    release: str = "sf",
) -> list[dict[str, Any]]:
    """Every object the chart renders (NOTES.txt left out)."""
    objects = []
    files = render_files(values, api_versions=api_versions, namespace=namespace, release=release)
    for path, text in files.items():
        if path.endswith("NOTES.txt"):
            continue
        objects += [doc for doc in yaml.safe_load_all(text) if doc]
    return objects
