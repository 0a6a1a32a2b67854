"""The production server (gunicorn.conf.py, uvicorn workers): what it adds to the app."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from harness.processes import AppServer, free_port, wait_until
from tests.conftest import LOAD_PASSWORD

pytestmark = pytest.mark.slow


METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {
        "SESSIONFLEET_METRICS_PORT": str(METRICS_PORT),
        "SESSIONFLEET_LOADTEST_USERS": "20",
        "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
        "SESSIONFLEET_LOGIN_MAX_FAILURES_PER_CLIENT": "3",
    }
    app = AppServer(Path(tmp_path_factory.mktemp("gunicorn")), env, name="g", workers=2)
    yield app
    app.stop()


def test_rotating_forwarded_for_does_not_escape_the_client_limit(server: AppServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(3):
            response = client.post(
                "/login",
                json={"username": f"user-00{10 + i}", "password": "wrong"},
                headers={"x-forwarded-for": f"192.0.2.{i}"},
            )
            assert response.status_code == 401
        blocked = client.post(
            "/login",
            json={"username": "user-0015", "password": LOAD_PASSWORD},
            headers={"x-forwarded-for": "192.0.2.200"},
        )
    assert blocked.status_code == 429


def _workers(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def test_a_killed_worker_is_counted(server: AppServer) -> None:
    """An OOM kill replaces a worker in place (the pod's restart count stays 0): the metric
    is how anyone sees it."""
    victim = _workers(server.proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: victim not in _workers(server.proc.pid) and len(_workers(server.proc.pid)) == 2,
        20,
        "a replacement worker",
    )
    wait_until(
        lambda: (
            "sessionfleet_worker_exits_total 1.0"
            in httpx.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5).text
        ),
        20,
        "the exit counted",
    )


def test_metrics_are_served_on_their_own_port_only(server: AppServer) -> None:
    metrics = f"http://127.0.0.1:{METRICS_PORT}"
    scraped = httpx.get(f"{metrics}/metrics", timeout=5)
    assert scraped.status_code == 200 and "sessionfleet_http_request_duration" in scraped.text
    assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 404
    assert httpx.get(f"{metrics}/healthz", timeout=5).status_code == 404
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
