"""Smoke check of a running deployment: log in, then read /me twice.

    python -m app.smoke http://host:port [username]

The password is read from SESSIONFLEET_LOADTEST_PASSWORD_FILE (or ..._PASSWORD). Used by the
Helm test pod and the container-cluster tests; the standard library only, so it runs in the
app image as is. Exits non-zero with a one-line reason on any failure.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path


def _password() -> str:
    path = os.environ.get("SESSIONFLEET_LOADTEST_PASSWORD_FILE")
    if path:
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ["SESSIONFLEET_LOADTEST_PASSWORD"]


def _request(
    url: str, cookie: str | None = None, body: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")  # noqa: S310 (URL given by the operator)
    request.add_header("content-type", "application/json")
    if cookie:
        # Sent by hand: the cookie is Secure, and this check talks plain http inside the cluster.
        request.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), {}


def main(base: str, user: str = "user-0001") -> str | None:
    status, headers, _ = _request(f"{base}/login", body={"username": user, "password": _password()})
    if status != 200:
        return f"login answered {status}"
    cookie = headers.get("set-cookie", headers.get("Set-Cookie", "")).split(";")[0]
    if "=" not in cookie:
        return "login set no cookie"
    served = set()
    for _ in range(2):
        status, headers, body = _request(f"{base}/me", cookie=cookie)
        if status != 200 or body.get("user") != user:
            return f"/me answered {status} {body}"
        served.add(headers.get("x-served-by", headers.get("X-Served-By", "?")))
    print(f"ok: {user} logged in, /me read twice (served by {', '.join(sorted(served))})")
    return None


if __name__ == "__main__":
    failure = main(*sys.argv[1:3])
    if failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
