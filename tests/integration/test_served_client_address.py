"""Behind the production server (gunicorn + uvicorn workers), the client address used for
login throttling cannot be chosen by the client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LOAD_PASSWORD
from tests.support.processes import AppServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    env = {
        "SESSIONFLEET_LOADTEST_USERS": "20",
        "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
        "SESSIONFLEET_LOGIN_MAX_FAILURES_PER_CLIENT": "3",
    }
    app = AppServer(Path(tmp_path_factory.mktemp("gunicorn")), env, name="g", workers=1)
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
