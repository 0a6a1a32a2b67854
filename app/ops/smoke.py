"""Smoke check of a running deployment: the store answers, and (with a load-test password) a
login works and /me reads it back twice.

    python -m app.ops.smoke http://host:port [username]

The password is read from SESSIONFLEET_LOADTEST_PASSWORD_FILE (or ..._PASSWORD); without one
only readiness is checked (production installs create no load-test users). Used by the Helm
test pod and the container-cluster tests; the standard library only, so it runs in the app
image as is. Exits non-zero with a one-line reason on any failure.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path


def _password() -> str | None:
    path = os.environ.get("SESSIONFLEET_LOADTEST_PASSWORD_FILE")
    if path and Path(path).exists():
        return Path(path).read_text(encoding="utf-8").strip()
    return os.environ.get("SESSIONFLEET_LOADTEST_PASSWORD")


def _request(
    url: str, cookie: str | None = None, body: dict[str, str] | None = None
) -> tuple[int, Message, dict[str, object]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")  # noqa: S310 (URL given by the operator)
    request.add_header("content-type", "application/json")
    if cookie:
        # Sent by hand: the cookie is Secure, and this check talks plain http inside the cluster.
        request.add_header("cookie", cookie)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, response.headers, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, error.headers, {}


def _patiently(
    url: str, cookie: str | None = None, body: dict[str, str] | None = None, seconds: float = 60
) -> tuple[int, Message, dict[str, object]]:
    """A request retried while the answer is 503 + Retry-After (a failover or a rolling
    restart under way: what any client should do), up to `seconds`. A refused connection is
    retried too: a NetworkPolicy controller lets a new pod's address in only once it has
    seen the pod (kube-router took up to a few seconds on kind), so this pod's first
    connections can be rejected."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            status, headers, body_out = _request(url, cookie, body)
        except urllib.error.URLError:
            if time.monotonic() + 1 > deadline:
                raise
            time.sleep(1)
            continue
        retry_after = headers.get("retry-after") if status == 503 else None
        if retry_after is None or time.monotonic() + float(retry_after) > deadline:
            return status, headers, body_out
        time.sleep(float(retry_after))


def main(base: str, user: str = "user-0001") -> str | None:
    status, _, report = _patiently(f"{base}/readyz")
    if status != 200 or report.get("store") != "ok":
        return f"/readyz answered {status} {report}"
    password = _password()
    if password is None:
        print("ok: ready, the store answers (no load-test password: login not tried)")
        return None
    status, headers, _ = _patiently(f"{base}/login", body={"username": user, "password": password})
    if status != 200:
        return f"login answered {status}"
    # The session cookie, not the device cookie a login also sets.
    cookies = [c.split(";")[0] for c in headers.get_all("set-cookie") or []]
    session = [c for c in cookies if "=" in c and "sfdev=" not in c]
    if not session:
        return "login set no session cookie"
    served = set()
    for _ in range(2):
        status, headers, body = _patiently(f"{base}/me", cookie=session[0])
        if status != 200 or body.get("user") != user:
            return f"/me answered {status} {body}"
        served.add(headers.get("x-served-by", "?"))
    print(f"ok: ready; {user} logged in, /me read twice (served by {', '.join(sorted(served))})")
    return None


if __name__ == "__main__":
    failure = main(*sys.argv[1:3])
    if failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
