"""A short (~1 minute) Locust run with chaos against the local cluster: fails on any lost or
corrupted session. Locust runs in its own process (gevent must not patch this one)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.processes import ROOT
from tests.cluster.conftest import PROJECT, Fleet

# Starting the cluster (building its images on a fresh machine) counts against the first test.
pytestmark = [pytest.mark.slow, pytest.mark.cluster, pytest.mark.timeout(1500)]


def test_one_minute_chaos_run_loses_no_session(fleet_env: Fleet, tmp_path: Path) -> None:
    fleet_env.cluster.wait_converged()
    env = {**fleet_env.env, "SESSIONFLEET_LOADTEST_PASSWORD": fleet_env.password}
    env.pop("SESSIONFLEET_LOADTEST_PASSWORD_FILE", None)
    run = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "locust"),
            "-f",
            "loadtest/locustfile.py",
            "--headless",
            "--only-summary",
            "--host",
            fleet_env.url,
            "--users",
            "12",
            "--spawn-rate",
            "12",
            "--run-time",
            "60s",
            "--stop-timeout",
            "10",
            "--chaos",
            "local",
            "--chaos-project",
            PROJECT,
            "--chaos-plan",
            "standard",
            "--report-dir",
            str(tmp_path),
            "--html",
            str(tmp_path / "locust.html"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = run.stdout[-4000:] + run.stderr[-4000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["sessions_lost"] == 0, output
    assert summary["session_anomalies"] == 0, summary["fatal_anomalies"]
    actions = [event["action"] for event in summary["chaos_events"] if event["ok"]]
    assert {"kill_app", "kill_redis_master", "lose_node", "restore_node"} <= set(actions), summary[
        "chaos_events"
    ]
    assert len(summary["hops"]["replicas_seen"]) == 3
    assert summary["requests"] > 500
    assert run.returncode == 0, (summary["verdict"], output)
    assert (tmp_path / "timeline.svg").read_text().startswith("<svg")
    assert os.path.getsize(tmp_path / "locust.html") > 1000
