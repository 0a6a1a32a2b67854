"""Schemathesis against a real server: every operation, anonymous and logged in, then its
stateful mode following the document's links, with all of its checks on. Any undocumented
status, body that breaks its schema, 5xx or missing Retry-After fails the run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.processes import ROOT, AppServer, RedisServer
from tests.conftest import LOAD_PASSWORD

pytestmark = [pytest.mark.slow, pytest.mark.redis]

# Fixed, so a CI run is reproducible; SF_FUZZ_SEED=random (or a number) explores further.
SEED = os.environ.get("SF_FUZZ_SEED", "20261130")
EXAMPLES = os.environ.get("SF_FUZZ_EXAMPLES", "60")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    workdir = Path(tmp_path_factory.mktemp("schemathesis"))
    redis = RedisServer(workdir)
    env = {
        "SESSIONFLEET_REDIS_URL": redis.url,
        "SESSIONFLEET_LOADTEST_USERS": "5",
        "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
        # The fuzzer fails thousands of logins from one address; the throttle has its tests.
        "SESSIONFLEET_LOGIN_MAX_FAILURES_PER_CLIENT": "1000000",
        "SESSIONFLEET_LOGIN_MAX_FAILURES_PER_USER": "1000000",
        "SESSIONFLEET_LOG_LEVEL": "WARNING",
    }
    app = AppServer(workdir, env, name="fuzzed")
    yield app
    app.stop()
    redis.stop()


def _schemathesis(server: AppServer, tmp_path: Path, *, logged_in: bool) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if logged_in:
        env |= {
            "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
            "SF_FUZZ_BASE_URL": server.url,
            "SF_FUZZ_USER": "user-0001",
            "SF_FUZZ_PASSWORD": LOAD_PASSWORD,
            "SF_FUZZ_COOKIE": "sid",  # plain-http test server: no __Host- prefix
        }
    seed = [] if SEED == "random" else ["--seed", SEED]
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", EXAMPLES, *seed, "--no-color", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    run = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
    assert "Stateful" in run.stdout and "passed" in run.stdout


def test_every_operation_conforms_anonymous(server: AppServer, tmp_path: Path) -> None:
    _schemathesis(server, tmp_path, logged_in=False)


def test_every_operation_conforms_logged_in(server: AppServer, tmp_path: Path) -> None:
    _schemathesis(server, tmp_path, logged_in=True)
