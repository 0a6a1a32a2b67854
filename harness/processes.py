"""Start and stop the real processes tests need (redis-server, app servers), on loopback.

Readiness is polled (bounded), never slept for. Every process is stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.02)
    raise TimeoutError(f"{what} not ready within {timeout}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Proc:
    """A child process with its log file; `stop()` is safe to call twice."""

    def __init__(self, args: Sequence[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.args = list(args)
        self.log = log
        self._log_file = log.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=ROOT,
            start_new_session=True,  # its own group: stopping it stops its workers too
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 10) -> None:
        if self.popen.poll() is None:
            self.signal(signal.SIGCONT)  # a SIGSTOPped process cannot act on SIGTERM
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(timeout)
        self._log_file.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise RuntimeError("redis-server not found: run `make deps` (installs Debian's redis)")
    return found


class RedisServer:
    def __init__(self, workdir: Path, port: int | None = None, *extra: str) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = Proc(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                # Replicas sync at once (Redis 7 waits 5 s for more replicas to share a sync).
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
                str(workdir),
                *extra,
            ],
            workdir / f"redis-{self.port}.log",
        )
        self.client = redis.Redis(port=self.port, socket_timeout=2)
        wait_until(lambda: bool(self.client.ping()), 10, f"redis on {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.client.close()
        self.proc.stop()


class ReplicatedRedis:
    """A master, one replica and one Sentinel (quorum 1) watching them: what the production
    app's durable commits need (WAIT for the replica, a census of the Sentinels), in the
    smallest form. `cpu` pins them (taskset) where a benchmark wants them."""

    MASTER_NAME = "sessionfleet"

    def __init__(self, workdir: Path, cpu: int | None = None) -> None:
        pin = ["taskset", "-c", str(cpu)] if cpu is not None and shutil.which("taskset") else []
        self.master = RedisServer(workdir / "master")
        self.replica = RedisServer(
            workdir / "replica", None, "--replicaof", "127.0.0.1", str(self.master.port)
        )
        # Synced, not only connected: until the full sync is done the replica acknowledges
        # nothing, and every durable commit would be refused.
        wait_until(
            lambda: self.replica.client.info("replication")["master_link_status"] == "up",
            20,
            "the replica in sync",
        )
        self.sentinel_port = free_port()
        config = workdir / "sentinel.conf"
        config.write_text(
            f"port {self.sentinel_port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 1\n"
        )
        sentinel = shutil.which("redis-sentinel") or "redis-sentinel"
        self.sentinel = Proc([*pin, sentinel, str(config)], workdir / "sentinel.log")
        probe = redis.Redis(port=self.sentinel_port, socket_timeout=2)

        def replica_seen() -> bool:  # connected to it, not only told of it by the master
            replicas = probe.sentinel_slaves(self.MASTER_NAME)
            return len(replicas) == 1 and not replicas[0]["is_disconnected"]

        wait_until(replica_seen, 30, "the Sentinel connected to the replica")
        probe.close()
        for server in (self.master, self.replica):
            if pin:
                subprocess.run(
                    [*pin[:2], "-p", pin[2], str(server.proc.pid)], check=False, capture_output=True
                )

    @property
    def sentinels(self) -> str:
        return f"127.0.0.1:{self.sentinel_port}"

    def stop(self) -> None:
        self.sentinel.stop()
        self.replica.stop()
        self.master.stop()


class AppServer:
    """One app replica: uvicorn (or gunicorn with `workers`) serving app.main:app."""

    def __init__(self, workdir: Path, env: dict[str, str], *, name: str, workers: int = 0) -> None:
        self.port = free_port()
        self.name = name
        full_env = {"SESSIONFLEET_REPLICA_NAME": name, "SESSIONFLEET_COOKIE_SECURE": "false", **env}
        if workers:
            args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app.main:app"]
            full_env |= {
                "SESSIONFLEET_BIND": f"127.0.0.1:{self.port}",
                "SESSIONFLEET_WORKERS": str(workers),
            }
        else:
            args = [
                sys.executable,
                "-m",
                "uvicorn",
                "app.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ]
        self.proc = Proc(args, workdir / f"app-{name}.log", full_env)
        wait_until(lambda: self._healthy(), 30, f"app {name}")

    def _healthy(self) -> bool:
        """A worker answers, not just the listening socket: gunicorn's master binds it
        before its workers have imported the app."""
        if self.proc.popen.poll() is not None:
            raise RuntimeError(f"app {self.name} exited:\n{self.proc.tail()}")
        return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.stop()


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)
