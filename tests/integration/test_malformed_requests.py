"""No request, however malformed, gets a 500 or a response without the promised headers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app
from tests.conftest import make_settings

MALFORMED_ORIGINS = ["http://[::1", "http://[", "http://]x", "http://a:b@[zz]", "http://[::1]:x"]
PATHS = (
    "/login /logout /me /cart /cart/items /cart/items/a /counter /checkout /sessions "
    f"/sessions/{'a' * 32} /logout-all /healthz /readyz /openapi.json /nowhere"
).split()
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "BREW"]
HEADER_NAMES = (
    b"origin sec-fetch-site cookie content-type content-length content-encoding "
    b"transfer-encoding idempotency-key host x-forwarded-for x-forwarded-proto accept "
    b"accept-encoding"
).split()
# What an HTTP server passes on: any byte but CR, LF and NUL in a value.
header_values = st.one_of(
    st.binary(max_size=120).map(lambda b: bytes(c for c in b if c not in (0, 10, 13))),
    st.from_regex(rb"\A[ -~]{0,60}\Z"),  # printable ASCII
).map(lambda b: b.strip(b" \t"))
# Addresses with broken brackets, user info and ports: what URL and IP parsers trip over.
url_like = st.builds(
    lambda *parts: b"".join(parts),
    st.sampled_from([b"http://", b"https://", b"", b"null", b"//"]),
    st.sampled_from([b"", b"a:b@", b"@"]),
    st.one_of(
        st.from_regex(rb"\A[a-z0-9.-]{0,12}\Z"),
        st.from_regex(rb"\A\[[0-9a-fz:.]{0,10}\]?\Z"),
        st.from_regex(rb"\A\][a-z]{0,4}\Z"),
    ),
    st.sampled_from([b"", b":443", b":x", b":99999", b":", b"/path"]),
)
header_names = st.sampled_from(HEADER_NAMES) | st.from_regex(rb"\A[a-z0-9-]{1,20}\Z")
headers = st.one_of(
    st.tuples(st.sampled_from([b"origin", b"referer", b"host", b"x-forwarded-for"]), url_like),
    st.tuples(header_names, header_values),
)
bodies = st.one_of(
    st.binary(max_size=300),
    st.builds(orjson.dumps, st.dictionaries(st.text(max_size=10), st.text(max_size=10))),
    st.just(b'{"username": "user-0001", "password": "x"}'),
    st.just(b'{"item_id": "a", "qty": 1}'),
)


class Driver:
    """Calls the app the way a server does, with headers no HTTP client library would send."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_app(make_settings())
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.state = self.loop.run_until_complete(self.lifespan.__aenter__())

    def close(self) -> None:
        self.loop.run_until_complete(self.lifespan.__aexit__(None, None, None))
        self.loop.close()

    def request(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes = b""
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        return self.loop.run_until_complete(self._request(method, path, headers, body))

    async def _request(
        self, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("203.0.113.9", 40000),
            "server": ("sf.test", 443),
            "state": dict(self.state),
        }
        sent: list[dict[str, Any]] = []
        delivered = False

        async def receive() -> dict[str, Any]:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)  # the client never disconnects while we wait
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        return start["status"], dict(start.get("headers", [])), payload


@pytest.fixture(scope="module")
def driver() -> Iterator[Driver]:
    d = Driver()
    yield d
    d.close()


def _check(status: int, headers: dict[bytes, bytes], body: bytes, method: str) -> None:
    assert status < 500, (status, body[:300])
    assert headers.get(b"x-served-by") == b"test-replica"
    if status >= 400 and method != "HEAD":
        assert headers.get(b"content-type", b"").startswith(b"application/json"), headers
        assert "detail" in orjson.loads(body)


@pytest.mark.parametrize("origin", MALFORMED_ORIGINS)
def test_unparsable_origin_is_refused_as_cross_site(driver: Driver, origin: str) -> None:
    status, headers, body = driver.request(
        "POST", "/counter", [(b"host", b"sf.test"), (b"origin", origin.encode())]
    )
    assert status == 403, body
    _check(status, headers, body, "POST")


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(METHODS),
    path=st.sampled_from(PATHS),
    headers=st.lists(headers, max_size=8),
    body=bodies,
)
def test_fuzzed_requests_never_get_a_500(
    driver: Driver, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    status, response_headers, payload = driver.request(
        method, path, [(b"host", b"sf.test"), *headers], body
    )
    _check(status, response_headers, payload, method)


async def test_an_unexpected_error_is_a_json_500_that_names_the_replica() -> None:
    app = create_app(make_settings())

    async def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/broken", broken)
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(_with_state(app, state), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://sf.test") as client:
            response = await client.get("/broken")
    assert response.status_code == 500
    assert response.headers["x-served-by"] == "test-replica"
    assert response.json() == {"detail": "internal error"}


def _with_state(app: Any, state: dict[str, Any]) -> Any:
    async def call(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "state": dict(state)}, receive, send)

    return call


def test_unknown_methods_share_one_metrics_label(driver: Driver) -> None:
    for method in ("BREW", "PROPFIND", "X-RANDOM-1", "X-RANDOM-2"):
        driver.request(method, "/me", [(b"host", b"sf.test")])
    status, _, body = driver.request("GET", "/metrics", [(b"host", b"sf.test")])
    assert status == 200
    assert b'method="OTHER"' in body and b"BREW" not in body and b"X-RANDOM" not in body
