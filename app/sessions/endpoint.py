"""Where the pipelined connection goes and how it connects, read from a redis-py client's
options (the client itself sends nothing). An option the connection would silently ignore
is refused at start-up instead (`ValueError` naming it)."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Mapping
from ssl import SSLContext
from typing import Any

from redis.asyncio import Redis
from redis.asyncio import connection as redis_connection
from redis.asyncio.connection import SSLConnection
from redis.asyncio.sentinel import SentinelConnectionPool

Address = tuple[str, int]
# Where the master is now, asked each time the connection is (re)made.
AddressSource = Callable[[], Awaitable[Address]]

# redis-py options the connection carries out (ssl_* ones too: redis-py builds the context).
HONOURED = frozenset(
    {
        "host",
        "port",
        "path",
        "db",
        "username",
        "password",
        "client_name",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "socket_keepalive_options",
    }
)
# Options that do not apply to it. redis-py's own retries and health checks: the store retries
# within the request's deadline, and a server that leaves a command unanswered past the read
# timeout is dropped. Reply decoding: replies are bytes (decode_responses itself is refused).
# Buffer sizes, the client library's labels (CLIENT SETINFO), redis-py's internal plumbing.
NOT_APPLICABLE = frozenset(
    {
        "retry",
        "retry_on_error",
        "retry_on_timeout",
        "health_check_interval",
        "socket_read_size",
        "encoding",
        "encoding_errors",
        "driver_info",
        "lib_name",
        "lib_version",
        "legacy_responses",
        "connection_pool",
        "event_dispatcher",
        "himport_registry",
        "maint_notifications_config",
        "maint_notifications_pool_handler",
        "orig_host_address",
        "orig_socket_timeout",
        "orig_socket_connect_timeout",
    }
)


def check_supported(options: Mapping[str, Any]) -> None:
    """Raises `ValueError` naming the first redis-py connection option that is set (not
    None, False or RESP2) and that the pipelined connection would not honour: RESP3, a
    credential provider, decoded replies... A client configured for them must not be served
    by a connection that quietly does something else."""
    for name, value in options.items():
        if name in HONOURED or name in NOT_APPLICABLE or name.startswith("ssl_"):
            continue
        if value is None or value is False or (name == "protocol" and str(value) == "2"):
            continue
        raise ValueError(
            f"redis-py option {name}={value!r} is not supported by the pipelined connection "
            "(app/sessions/endpoint.py): leave it unset"
        )


def _keepalive(options: Mapping[str, Any]) -> dict[int, int | bytes] | None:
    """TCP keepalive as redis-py would set it (on unless turned off), or None."""
    if not options.get("socket_keepalive", True):
        return None
    given = options.get("socket_keepalive_options")
    if isinstance(given, Mapping):
        return dict(given)
    defaults = getattr(redis_connection, "get_default_socket_keepalive_options", None)
    return dict(defaults()) if defaults is not None else {}  # redis-py's, where it has them


class Endpoint:
    """Where and how to connect, read from the redis-py client's pool; where, from
    `master_address` instead when given (the Sentinel census)."""

    def __init__(self, client: Redis, master_address: AddressSource | None = None) -> None:
        pool = client.connection_pool
        options = pool.connection_kwargs
        check_supported(options)
        self.pool = pool
        self.master_address = master_address
        self.path: str | None = options.get("path")  # unix socket
        self.address: Address = (options.get("host", "localhost"), int(options.get("port", 6379)))
        self.connect_timeout = float(options.get("socket_connect_timeout") or 5.0)
        self.read_timeout = float(options.get("socket_timeout") or 5.0)
        self.keepalive = _keepalive(options)
        self.handshake: list[tuple[Any, ...]] = []
        if options.get("password"):
            user = (options["username"],) if options.get("username") else ()
            self.handshake.append(("AUTH", *user, options["password"]))
        if options.get("db"):
            self.handshake.append(("SELECT", options["db"]))
        if options.get("client_name"):
            self.handshake.append(("CLIENT", "SETNAME", options["client_name"]))
        self.ssl: SSLContext | None = None
        if issubclass(pool.connection_class, SSLConnection):
            self.ssl = pool.connection_class(**options).ssl_context.get()

    async def current_address(self) -> Address:
        if self.master_address is not None:
            return await self.master_address()
        if isinstance(self.pool, SentinelConnectionPool):
            host, port = await self.pool.get_master_address()
            return str(host), int(port)
        return self.address

    def configure(self, sock: socket.socket | None) -> None:
        """Socket options of a new TCP connection (keepalive)."""
        if sock is None or self.keepalive is None or sock.family == socket.AF_UNIX:
            return
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in self.keepalive.items():
            sock.setsockopt(socket.IPPROTO_TCP, option, value)
