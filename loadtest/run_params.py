"""The parameters of a run, as the report states them: target, users, duration, chaos plan and
backend, thresholds, and the versions involved (what the target says it runs, and the commit of
the checkout driving the load)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import requests

from . import chaos_plan

ROOT = Path(__file__).resolve().parents[1]


def describe(environment: Any) -> dict[str, Any]:
    """From Locust's environment (its parsed options); one request to the target's /healthz."""
    options = environment.parsed_options
    run_time = float(options.run_time) if options is not None and options.run_time else None
    chaos = options.chaos if options is not None else "none"
    plan_name = options.chaos_plan if options is not None and chaos != "none" else ""
    return {
        "target": environment.host,
        "users": getattr(options, "num_users", None),
        "spawn_rate": getattr(options, "spawn_rate", None),
        "run_time_s": run_time,
        "chaos_backend": chaos,
        "chaos_plan": plan_name,
        "chaos_schedule": [
            {"at_s": round(at, 1), "action": action}
            for at, action in (chaos_plan.plan(plan_name, run_time or 180.0) if plan_name else [])
        ],
        "max_error_rate": getattr(options, "max_error_rate", 0.05),
        "app_version": served_version(environment.host),
        "loadtest_commit": checkout_commit(),
    }


def served_version(host: str | None) -> str:
    """The version the target reports on /healthz ("" when it does not say or cannot)."""
    if not host:
        return ""
    try:
        body = requests.get(f"{host.rstrip('/')}/healthz", timeout=3).json()
    except (requests.RequestException, ValueError):
        return ""
    return str(body.get("version", "")) if isinstance(body, dict) else ""


def checkout_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=10"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except OSError:
        return ""
    return result.stdout.strip()
