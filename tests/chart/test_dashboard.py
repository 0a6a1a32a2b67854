"""The Grafana dashboard (k8s/observability/dashboards/sessionfleet.json): every query reads
series the app exports (scraped from a running test app, not listed here), every metric family
of the app is on it, and promtool parses every query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import exported_families, exported_series, metric_names

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "k8s" / "observability" / "dashboards" / "sessionfleet.json"
PROMTOOL = shutil.which("promtool")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, PromQL) of every panel target, template variable and annotation."""
    found = [(p["title"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            inner = re.fullmatch(r"label_values\((.+),\s*\w+\)", text)
            assert inner, text
            found.append((f"variable {variable['name']}", inner.group(1)))
    found += [(f"annotation {a['name']}", a["expr"]) for a in dashboard["annotations"]["list"]]
    return found


def test_every_panel_has_queries_on_the_chosen_prometheus(dashboard: dict[str, Any]) -> None:
    assert panels(dashboard)
    for panel in panels(dashboard):
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel.get("description"), panel["title"]  # what it shows, for the on-call reader
    [source] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert (source["name"], source["query"]) == ("datasource", "prometheus")


def test_every_query_reads_series_the_app_exports(dashboard: dict[str, Any]) -> None:
    exported = exported_series()
    for where, expr in queries(dashboard):
        used = metric_names(expr)
        assert used, (where, expr)
        assert used <= exported, (where, used - exported)


def test_every_metric_family_of_the_app_is_on_the_dashboard(dashboard: dict[str, Any]) -> None:
    used = set().union(*(metric_names(expr) for _, expr in queries(dashboard)))
    families = {
        name: series
        for name, series in exported_families().items()
        if name.startswith("sessionfleet_") and not name.endswith("_created")
    }
    assert families
    missing = [name for name, series in families.items() if not series & used]
    assert missing == []


def test_per_replica_views_and_the_503s_are_there(dashboard: dict[str, Any]) -> None:
    exprs = [expr for _, expr in queries(dashboard)]
    assert sum("by (pod)" in e for e in exprs) >= 3
    assert any('status="503"' in e for e in exprs)


def test_panels_fit_the_grid_without_overlap(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])
        }
        assert not cells & taken, panel["title"]
        taken |= cells


@pytest.mark.skipif(PROMTOOL is None, reason="promtool missing (make system-deps)")
def test_promtool_parses_every_query(dashboard: dict[str, Any], tmp_path: Path) -> None:
    # Grafana's variables, as Grafana substitutes them, then each query as a recording rule.
    substitutions = {"$__rate_interval": "1m", "$__range": "1h", "$namespace": ".*", "$pod": ".*"}
    rules = []
    for i, (_, expr) in enumerate(queries(dashboard)):
        for variable, value in substitutions.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert PROMTOOL is not None
    result = subprocess.run(
        [PROMTOOL, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout
