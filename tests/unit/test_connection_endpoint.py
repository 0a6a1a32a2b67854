"""The batched connection takes where and how to connect from the redis-py client, so both
agree: address, password (and ACL user), database, TLS, unix socket, Sentinel."""

from __future__ import annotations

import ssl

from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel

from app.sessions.batching import _Endpoint


def test_url_password_database_and_tls() -> None:
    endpoint = _Endpoint(Redis.from_url("rediss://:pw@cache.example:6380/2"))
    assert endpoint.address == ("cache.example", 6380)
    assert endpoint.handshake == [("AUTH", "pw"), ("SELECT", 2)]
    assert isinstance(endpoint.ssl, ssl.SSLContext)


def test_plain_connection_needs_no_handshake() -> None:
    endpoint = _Endpoint(Redis.from_url("redis://127.0.0.1:6379/0"))
    assert endpoint.handshake == [] and endpoint.ssl is None and endpoint.path is None


def test_unix_socket() -> None:
    endpoint = _Endpoint(Redis.from_url("unix:///run/redis.sock?db=1"))
    assert endpoint.path == "/run/redis.sock" and endpoint.handshake == [("SELECT", 1)]


def test_sentinel_client_with_acl_user_and_tls() -> None:
    client = Sentinel([("localhost", 26379)], ssl=True).master_for(
        "sessionfleet", ssl=True, username="app", password="pw"
    )
    endpoint = _Endpoint(client)
    assert endpoint.handshake == [("AUTH", "app", "pw")]
    assert isinstance(endpoint.ssl, ssl.SSLContext)
