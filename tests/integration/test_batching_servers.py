"""The pipelined connection against servers as production runs them (TLS with verified
certificates, an ACL user, a unix socket) and in the states a failover leaves them in (a
replica, a replica cut off from its master, a server still loading its data): it connects as
configured, and their refusals reach the caller as redis-py's exception classes."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import trustme
from redis import exceptions as rx
from redis.asyncio import Redis

from app.sessions import Limits, RedisSessionStore
from app.sessions.batching import CommandBatcher
from harness.processes import (
    Proc,
    RedisServer,
    free_port,
    port_open,
    redis_server_binary,
    wait_until,
)

pytestmark = pytest.mark.redis


class TLSFiles:
    def __init__(self, directory: Path, ca: trustme.CA) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.ca = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca))
        server = ca.issue_cert("127.0.0.1", "localhost")
        self.server_cert, self.server_key = directory / "server.pem", directory / "server.key"
        server.cert_chain_pems[0].write_to_path(str(self.server_cert))
        server.private_key_pem.write_to_path(str(self.server_key))
        client = ca.issue_cert("sessionfleet.test")
        self.client_cert, self.client_key = directory / "client.pem", directory / "client.key"
        client.cert_chain_pems[0].write_to_path(str(self.client_cert))
        client.private_key_pem.write_to_path(str(self.client_key))


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[RedisServer, int, TLSFiles]]:
    """A Redis that speaks TLS on a port of its own and asks clients for a certificate (the
    plain port is the harness' own, for readiness)."""
    files = TLSFiles(tmp_path / "tls", trustme.CA())
    tls_port = free_port()
    server = RedisServer(
        tmp_path / "redis",
        None,
        *("--tls-port", str(tls_port), "--tls-auth-clients", "yes"),
        *("--tls-cert-file", str(files.server_cert), "--tls-key-file", str(files.server_key)),
        *("--tls-ca-cert-file", str(files.ca)),
    )
    yield server, tls_port, files
    server.stop()


async def test_tls_with_certificates_verified_both_ways(
    tls_server: tuple[RedisServer, int, TLSFiles],
) -> None:
    server, tls_port, files = tls_server
    client = Redis.from_url(
        f"rediss://127.0.0.1:{tls_port}/0",
        ssl_ca_certs=str(files.ca),
        ssl_certfile=str(files.client_cert),
        ssl_keyfile=str(files.client_key),
    )
    batcher = CommandBatcher(client)
    assert await batcher.call("SET", "over", "tls") == (b"OK", None)
    assert server.client.get("over") == b"tls"
    await batcher.close()


async def test_tls_refuses_a_server_certificate_of_another_ca(
    tls_server: tuple[RedisServer, int, TLSFiles], tmp_path: Path
) -> None:
    _, tls_port, files = tls_server
    stranger = TLSFiles(tmp_path / "stranger", trustme.CA())
    client = Redis.from_url(
        f"rediss://127.0.0.1:{tls_port}/0",
        ssl_ca_certs=str(stranger.ca),  # trusts only another CA
        ssl_certfile=str(files.client_cert),
        ssl_keyfile=str(files.client_key),
    )
    batcher = CommandBatcher(client)
    with pytest.raises(rx.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await batcher.call("PING")
    await batcher.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "own")
    yield server
    server.stop()


async def test_an_acl_user_with_its_password_and_its_limits(own_server: RedisServer) -> None:
    own_server.client.acl_setuser(
        "app", enabled=True, passwords=["+app-secret"], keys=["sf:*"], commands=["+@all"]
    )
    url = f"redis://app:app-secret@127.0.0.1:{own_server.port}/0"
    batcher = CommandBatcher(Redis.from_url(url, client_name="sessionfleet-test"))
    assert await batcher.call("ACL", "WHOAMI") == (b"app", None)
    assert await batcher.call("CLIENT", "GETNAME") == (b"sessionfleet-test", None)
    assert await batcher.call("SET", "sf:mine", 1) == (b"OK", None)
    refused, _ = await batcher.call("SET", "elsewhere", 1)
    assert isinstance(refused, rx.NoPermissionError)
    await batcher.close()
    wrong = CommandBatcher(Redis.from_url(url.replace("app-secret", "wrong")))
    with pytest.raises(rx.AuthenticationError):
        await wrong.call("PING")
    await wrong.close()


async def test_a_unix_socket(tmp_path: Path) -> None:
    # A short path: unix socket paths are limited to ~100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="sf-"))
    socket_path = directory / "redis.sock"
    server = RedisServer(tmp_path, None, "--unixsocket", str(socket_path))
    try:
        batcher = CommandBatcher(Redis(unix_socket_path=str(socket_path), db=2))
        assert await batcher.call("SET", "via", "socket") == (b"OK", None)
        info, _ = await batcher.call("CLIENT", "INFO")
        assert f"laddr={socket_path}" in info.decode()
        assert redis.Redis(port=server.port, db=2).get("via") == b"socket"
        await batcher.close()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_write_to_a_replica_is_a_read_only_error_and_drops_the_connection(
    tmp_path: Path,
) -> None:
    master = RedisServer(tmp_path / "m")
    replica = RedisServer(tmp_path / "r", None, "--replicaof", "127.0.0.1", str(master.port))
    try:
        batcher = CommandBatcher(Redis.from_url(replica.url))
        refused, _ = await batcher.call("SET", "k", 1)
        assert isinstance(refused, rx.ReadOnlyError)
        assert str(refused).startswith("READONLY")
        assert batcher.address is None  # the next batch asks where the master is
        await batcher.close()
    finally:
        replica.stop()
        master.stop()


async def test_a_replica_cut_off_from_its_master_answers_master_down(tmp_path: Path) -> None:
    gone = free_port()  # a master that never answers
    replica = RedisServer(tmp_path, None, "--replicaof", "127.0.0.1", str(gone))
    try:
        # Set once up (the harness' readiness PING would be refused too).
        replica.client.config_set("replica-serve-stale-data", "no")
        batcher = CommandBatcher(Redis.from_url(replica.url))
        refused, _ = await batcher.call("GET", "k")
        assert isinstance(refused, rx.MasterDownError)
        assert batcher.address is None
        await batcher.close()
    finally:
        replica.stop()


@pytest.fixture
def loading_server(tmp_path: Path) -> Iterator[int]:
    """A Redis still loading its data (slowed down per key) when the test starts."""
    seeded = RedisServer(tmp_path)
    with seeded.client.pipeline(transaction=False) as pipe:
        for i in range(20_000):
            pipe.set(f"k{i}", i)
        pipe.execute()
    seeded.client.save()
    seeded.stop()
    port = free_port()
    args = [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--dir", str(tmp_path), "--appendonly", "no"]
    # 100 µs a key, answering clients between every 1 KiB: ~2 s of LOADING replies.
    args += ["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"]
    proc = Proc(args, tmp_path / "loading.log")
    wait_until(lambda: port_open(port), 10, "the loading Redis listening")
    yield port
    proc.stop()


async def test_a_server_loading_its_data_is_a_busy_loading_error(loading_server: int) -> None:
    batcher = CommandBatcher(Redis(port=loading_server))
    refused, _ = await batcher.call("GET", "k1")
    assert isinstance(refused, rx.BusyLoadingError)
    await batcher.close()


async def test_the_store_waits_out_a_server_loading_its_data(loading_server: int) -> None:
    store = RedisSessionStore(
        Redis(port=loading_server),
        Limits(idle_ms=60_000, lifetime_ms=600_000, max_bytes=4096),
        wait_replicas=0,
        wait_timeout_ms=100,
        deadline=20.0,
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await store.load("a" * 32) is None  # retried until loaded, then answered
    assert loop.time() - started > 0.2  # it was loading: the first attempts were refused
    await store.close()
