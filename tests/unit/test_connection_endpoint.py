"""The batched connection takes where and how to connect from the redis-py client's options:
address, password (and ACL user), database, TLS, unix socket, Sentinel, client name; an
option it would not honour is refused at start-up; error replies get redis-py's classes."""

from __future__ import annotations

import ssl
from typing import Any

import hiredis
import pytest
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.asyncio.sentinel import Sentinel
from redis.credentials import UsernamePasswordCredentialProvider

from app.sessions import RedisOptions, connect, pipe
from app.sessions.batching import CommandBatcher
from app.sessions.endpoint import Endpoint


def test_url_password_database_and_tls() -> None:
    endpoint = Endpoint(Redis.from_url("rediss://:pw@cache.example:6380/2"))
    assert endpoint.address == ("cache.example", 6380)
    assert endpoint.handshake == [("AUTH", "pw"), ("SELECT", 2)]
    assert isinstance(endpoint.ssl, ssl.SSLContext)


def test_plain_connection_needs_no_handshake() -> None:
    endpoint = Endpoint(Redis.from_url("redis://127.0.0.1:6379/0"))
    assert endpoint.handshake == [] and endpoint.ssl is None and endpoint.path is None


def test_unix_socket() -> None:
    endpoint = Endpoint(Redis.from_url("unix:///run/redis.sock?db=1"))
    assert endpoint.path == "/run/redis.sock" and endpoint.handshake == [("SELECT", 1)]


def test_sentinel_client_with_acl_user_and_tls() -> None:
    client = Sentinel([("localhost", 26379)], ssl=True).master_for(
        "sessionfleet", ssl=True, username="app", password="pw"
    )
    endpoint = Endpoint(client)
    assert endpoint.handshake == [("AUTH", "app", "pw")]
    assert isinstance(endpoint.ssl, ssl.SSLContext)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("protocol", 3),
        ("decode_responses", True),
        ("credential_provider", UsernamePasswordCredentialProvider("app", "pw")),
    ],
)
def test_an_option_the_connection_would_not_honour_is_refused_by_name(
    option: str, value: Any
) -> None:
    with pytest.raises(ValueError, match=option):
        CommandBatcher(Redis(**{option: value}))


def test_the_options_our_own_wiring_sets_are_accepted() -> None:
    plain = connect(RedisOptions(url="redis://127.0.0.1:6379/1", password="pw", tls=True))
    sentinel = connect(
        RedisOptions(sentinels=[("127.0.0.1", 26379)], password="pw", sentinel_password="pw")
    )
    for made in (plain, sentinel):
        assert made.commands.endpoint.handshake[0] == ("AUTH", "pw")  # built: no ValueError
    assert isinstance(plain.commands.endpoint.ssl, ssl.SSLContext)  # TLS from the setting
    assert Endpoint(Redis(protocol=2)).handshake == []  # RESP2 is what it speaks
    assert Endpoint(Redis(client_name="w1")).handshake == [("CLIENT", "SETNAME", "w1")]


def test_error_replies_are_classed_as_redis_py_classes_them() -> None:
    for word, cls in pipe._ERRORS.items():
        assert BaseParser.EXCEPTION_CLASSES[word] is cls, word
    for word in ("READONLY", "LOADING", "MASTERDOWN", "NOSCRIPT"):
        error = pipe.error_of(hiredis.ReplyError(f"{word} something"))
        assert type(error) is BaseParser.EXCEPTION_CLASSES[word]
        assert str(error).startswith(word)  # the retry policy and the census read the word
