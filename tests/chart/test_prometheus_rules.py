"""The chart's PrometheusRule: rendered only when enabled and the cluster serves the Operator's
kind; every expression reads series the app exports; promtool checks the rules and fires each
alert on synthetic series (and leaves it silent on healthy ones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.helm import PROMETHEUS_RULE_API, render, render_files
from tests.support.promql import exported_series, metric_names

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (Debian package prometheus: make system-deps)"
)
ENABLED = {"prometheusRule": {"enabled": True}}
APP = 'namespace="shop", job="sf-sessionfleet-app"'
FIRING = {"namespace": "shop", "job": "sf-sessionfleet-app"}


def rules(values: dict[str, Any] | None = None) -> dict[str, Any]:
    [rule] = [
        o
        for o in render(values or ENABLED, api_versions=[PROMETHEUS_RULE_API])
        if o["kind"] == "PrometheusRule"
    ]
    return rule


def alerts(rule: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_rendered_only_when_enabled_and_the_operator_is_there() -> None:
    def kinds(values: dict[str, Any], apis: list[str]) -> list[str]:
        return [o["kind"] for o in render(values, api_versions=apis)]

    assert "PrometheusRule" in kinds(ENABLED, [PROMETHEUS_RULE_API])
    assert "PrometheusRule" not in kinds(ENABLED, [])  # no CRD: the install must still work
    assert "PrometheusRule" not in kinds(ENABLED, ["monitoring.coreos.com/v1/ServiceMonitor"])
    assert "PrometheusRule" not in kinds({}, [PROMETHEUS_RULE_API])  # off by default


def test_notes_say_when_enabled_rules_could_not_be_installed() -> None:
    notes = render_files(ENABLED)["sessionfleet/templates/NOTES.txt"]
    assert "NO ALERTS WERE INSTALLED" in notes
    with_crd = render_files(ENABLED, api_versions=[PROMETHEUS_RULE_API])
    assert "NO ALERTS" not in with_crd["sessionfleet/templates/NOTES.txt"]


def test_values_reach_the_rules() -> None:
    rule = rules(
        {
            "prometheusRule": {
                "enabled": True,
                "labels": {"release": "kps"},
                "alertLabels": {"team": "shop"},
                "selector": 'namespace="shop", service="sessionfleet"',
                "runbookBaseUrl": "https://runbooks.example.com/sf",
                "thresholds": {"unavailableRatio": 0.2, "commitLatencyP99Seconds": 1.5},
            }
        }
    )
    assert rule["metadata"]["labels"]["release"] == "kps"
    by_name = alerts(rule)
    for name, alert in by_name.items():
        assert alert["labels"]["team"] == "shop", name
        assert 'service="sessionfleet"' in alert["expr"] and "job=" not in alert["expr"], name
        assert alert["annotations"]["runbook_url"] == (
            f"https://runbooks.example.com/sf#{name.lower()}"
        )
    assert by_name["SessionfleetStoreUnavailable"]["expr"].endswith("> 0.2")
    assert by_name["SessionfleetCommitLatencyHigh"]["expr"].endswith("> 1.5")


def test_every_expression_reads_series_the_app_exports() -> None:
    exported = exported_series()
    for name, alert in alerts(rules()).items():
        used = metric_names(alert["expr"])
        assert used, name
        assert used <= exported, (name, used - exported)


def test_the_metric_name_check_catches_a_name_the_app_does_not_export() -> None:
    assert metric_names("rate(sessionfleet_no_such_series_total[5m]) > 0") - exported_series()


def write_rules(directory: Path, *, annotations: bool) -> Path:
    groups = rules()["spec"]["groups"]
    if not annotations:  # promtool compares annotations verbatim: the firing tests check labels
        groups = [
            {**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
            for g in groups
        ]
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@needs_promtool
def test_promtool_accepts_the_rules(tmp_path: Path) -> None:
    write_rules(tmp_path, annotations=True)
    result = promtool("check", "rules", "rules.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts(rules()))} rules found" in result.stdout


def series(name: str, labels: str, values: str) -> dict[str, str]:
    return {
        "series": f"{name}{{{APP}, {labels}}}" if labels else f"{name}{{{APP}}}",
        "values": values,
    }


HTTP = "sessionfleet_http_request_duration_seconds_count"
COMMIT = "sessionfleet_session_commit_seconds"
CENSUS = "sessionfleet_sentinel_census_total"
# alert -> (series that must fire it, healthy series that must never fire it, when the first
# must be firing). Series are sampled every 30 s; "0+20x80" counts up by 20 per sample for
# 40 minutes.
SCENARIOS: dict[str, tuple[list[dict[str, str]], list[dict[str, str]], str]] = {
    "SessionfleetStoreUnavailable": (
        [  # 10% answered 503
            series(HTTP, 'pod="a", method="GET", route="/me", status="200"', "0+180x80"),
            series(HTTP, 'pod="a", method="GET", route="/me", status="503"', "0+20x80"),
        ],
        [  # 1%: the threshold is 5%
            series(HTTP, 'pod="a", method="GET", route="/me", status="200"', "0+198x80"),
            series(HTTP, 'pod="a", method="GET", route="/me", status="503"', "0+2x80"),
        ],
        "10m",
    ),
    "SessionfleetCommitLatencyHigh": (
        [  # every commit between 0.5 s and 1 s
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="0.1"', "0x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="0.5"', "0x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="1"', "0+50x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="+Inf"', "0+50x80"),
        ],
        [  # every commit under 0.1 s
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="0.1"', "0+50x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="0.5"', "0+50x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="1"', "0+50x80"),
            series(f"{COMMIT}_bucket", 'pod="a", mode="update", le="+Inf"', "0+50x80"),
        ],
        "20m",
    ),
    "SessionfleetConflictRateHigh": (
        [  # 5% of commits refused
            series(f"{COMMIT}_count", 'pod="a", mode="update"', "0+100x80"),
            series("sessionfleet_session_conflicts_total", 'pod="a", outcome="refused"', "0+5x80"),
        ],
        [  # many conflicts, all re-applied: nobody saw a 409
            series(f"{COMMIT}_count", 'pod="a", mode="update"', "0+100x80"),
            series("sessionfleet_session_conflicts_total", 'pod="a", outcome="refused"', "0x80"),
            series(
                "sessionfleet_session_conflicts_total", 'pod="a", outcome="reapplied"', "0+50x80"
            ),
        ],
        "30m",
    ),
    "SessionfleetNoDurableReplica": (
        [  # every app pod's census: no replica up, from minute 2.5
            series("sessionfleet_redis_durable_replicas", 'pod="a"', "2x4 0x76"),
            series("sessionfleet_redis_durable_replicas", 'pod="b"', "2x4 0x76"),
        ],
        [  # one pod still sees a replica (its census is newer): writes can be durable
            series("sessionfleet_redis_durable_replicas", 'pod="a"', "2x4 0x76"),
            series("sessionfleet_redis_durable_replicas", 'pod="b"', "2x4 1x76"),
        ],
        "6m",
    ),
    "SessionfleetSentinelDisagreement": (
        [  # most censuses: a Sentinel names another master, or no majority
            series(CENSUS, 'pod="a", outcome="agreed"', "0+2x80"),
            series(CENSUS, 'pod="a", outcome="dissent"', "0+8x80"),
            series(CENSUS, 'pod="a", outcome="no_majority"', "0+2x80"),
        ],
        [  # a failover: two minutes of dissent, then agreement (shorter than the 5 min `for`)
            series(CENSUS, 'pod="a", outcome="agreed"', "0+10x80"),
            series(CENSUS, 'pod="a", outcome="dissent"', "0x10 0+30x4 120x66"),
        ],
        "15m",
    ),
    "SessionfleetFailoverStuck": (
        [series(CENSUS, 'pod="a", outcome="failing_over"', "0+10x80")],
        [  # a failover that took one minute
            series(CENSUS, 'pod="a", outcome="failing_over"', "0x10 0+10x2 20x68"),
            series(CENSUS, 'pod="a", outcome="agreed"', "0x12 0+10x68"),
        ],
        "10m",
    ),
    "SessionfleetRedisMasterChanged": (
        [series("sessionfleet_redis_master_changes_total", 'pod="a"', "0x10 1x70")],
        [series("sessionfleet_redis_master_changes_total", 'pod="a"', "3x80")],  # none lately
        "8m",
    ),
}
SEVERITY = {
    "SessionfleetStoreUnavailable": "critical",
    "SessionfleetNoDurableReplica": "critical",
    "SessionfleetFailoverStuck": "critical",
    "SessionfleetRedisMasterChanged": "info",
}


def test_every_alert_has_a_scenario() -> None:
    assert set(alerts(rules())) == set(SCENARIOS)


@needs_promtool
@pytest.mark.parametrize("alert", list(SCENARIOS))
def test_alert_fires_on_trouble_and_not_on_health(alert: str, tmp_path: Path) -> None:
    firing, healthy, at = SCENARIOS[alert]
    write_rules(tmp_path, annotations=False)
    expected = {**FIRING, "severity": SEVERITY.get(alert, "warning")}
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": firing,
                "alert_rule_test": [
                    {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": expected}]}
                ],
            },
            {  # silent at every minute of the healthy series, not only at the end
                "interval": "30s",
                "input_series": healthy,
                "alert_rule_test": [
                    {"eval_time": f"{minute}m", "alertname": alert, "exp_alerts": []}
                    for minute in range(1, 40)
                ],
            },
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_text_states_the_measured_value(tmp_path: Path) -> None:
    write_rules(tmp_path, annotations=True)
    firing, _, at = SCENARIOS["SessionfleetStoreUnavailable"]
    description = alerts(rules())["SessionfleetStoreUnavailable"]["annotations"]["description"]
    tests = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "30s",
        "tests": [
            {
                "interval": "30s",
                "input_series": firing,
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": "SessionfleetStoreUnavailable",
                        "exp_alerts": [
                            {
                                "exp_labels": {**FIRING, "severity": "critical"},
                                "exp_annotations": {
                                    "summary": "10% of requests answered 503 (session store "
                                    "unavailable)",
                                    "description": description.replace(
                                        "{{ $labels.namespace }}/{{ $labels.job }}",
                                        "shop/sf-sessionfleet-app",
                                    ),
                                },
                            }
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
