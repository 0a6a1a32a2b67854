"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) for its logged-in runs: every test case carries
a live session cookie, fetched again whenever a case was answered 401 (a fuzzed /logout)."""

from __future__ import annotations

import os
from typing import Any

import httpx
import schemathesis


@schemathesis.auth(refresh_interval=60)
class SessionCookie:
    def get(self, case: Any, context: Any) -> str:
        response = httpx.post(
            f"{os.environ['SF_FUZZ_BASE_URL']}/login",
            json={
                "username": os.environ["SF_FUZZ_USER"],
                "password": os.environ["SF_FUZZ_PASSWORD"],
            },
            timeout=10,
        )
        response.raise_for_status()
        return response.cookies[os.environ["SF_FUZZ_COOKIE"]]

    def set(self, case: Any, data: str, context: Any) -> None:
        case.cookies = {**(case.cookies or {}), os.environ["SF_FUZZ_COOKIE"]: data}
