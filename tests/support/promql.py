"""PromQL helpers for the dashboard and alert tests: which metric names an expression reads,
and which series the app exports (scraped from a running test app's /metrics, not listed by
hand)."""

from __future__ import annotations

import asyncio
import functools
import re

import httpx
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.settings import Settings

# Words PromQL uses that are not metric names (functions are recognised by their "(").
_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana's $variables allowed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)  # string literals
    text = re.sub(r"\$\{?\w+\}?", "0", text)  # Grafana variables ($__rate_interval, ${pod})
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges, subqueries
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text, flags=re.I
    )
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


@functools.cache
def exported_families() -> dict[str, frozenset[str]]:
    """Every metric family the app's /metrics declares (those with no samples yet included),
    with the series names it is queried by: counters as <name>_total, histograms as
    _bucket/_count/_sum, and so on."""
    families = {}
    for family in text_string_to_metric_families(asyncio.run(_scrape())):
        names = {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
        names.update(sample.name for sample in family.samples)
        families[family.name] = frozenset(names)
    return families


def exported_series() -> frozenset[str]:
    return frozenset().union(*exported_families().values())


async def _scrape() -> str:
    settings = Settings(replica_name="metrics-test", loadtest_users=1, loadtest_password="x" * 12)
    async with LifespanManager(create_app(settings)) as manager:
        transport = httpx.ASGITransport(manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sf.test") as client:
            response = await client.get("/metrics")
    assert response.status_code == 200
    return response.text
