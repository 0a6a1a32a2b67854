"""The whole fleet on loopback: 3 Redis + 3 Sentinels (started by the same bootstrap scripts
and config files the chart ships), N app replicas under gunicorn, and HAProxy in front.

Used by the HA integration tests and by `benchmarks/failover.py`. Every process is started
here and stopped here, by PID.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .helm import render
from .processes import ROOT, AppServer, Proc, free_port, wait_until

MASTER_NAME = "sessionfleet"
LOAD_PASSWORD = "ha-harness-password"


@dataclass
class RedisNode:
    index: int
    port: int
    sentinel_port: int
    datadir: Path
    redis_proc: Proc | None = None
    sentinel_proc: Proc | None = None
    watch_proc: Proc | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class HACluster:
    workdir: Path
    app_replicas: int = 3
    app_workers: int = 1
    app_env: dict[str, str] = field(default_factory=dict)
    nodes: list[RedisNode] = field(default_factory=list)
    apps: list[AppServer] = field(default_factory=list)
    proxy: Proc | None = None
    proxy_port: int = 0

    def __post_init__(self) -> None:
        self.redis_password = secrets.token_urlsafe(16)
        self.sentinel_password = secrets.token_urlsafe(16)
        self.secrets_dir = self.workdir / "secrets"
        self.secrets_dir.mkdir(parents=True, exist_ok=True)
        (self.secrets_dir / "redis").write_text(self.redis_password)
        (self.secrets_dir / "sentinel").write_text(self.sentinel_password)
        self.files = chart_files(self.workdir / "config")
        for i in range(3):
            datadir = self.workdir / f"node-{i}"
            datadir.mkdir(exist_ok=True)
            self.nodes.append(RedisNode(i, free_port(), free_port(), datadir))

    # --- Redis and Sentinel ----------------------------------------------------------------

    def _bootstrap_env(self, node: RedisNode) -> dict[str, str]:
        return {
            "SF_ANNOUNCE_HOST": "127.0.0.1",
            "SF_BIND": "127.0.0.1",
            "SF_REDIS_PORT": str(node.port),
            "SF_SENTINEL_PORT": str(node.sentinel_port),
            "SF_SENTINELS": " ".join(f"127.0.0.1:{n.sentinel_port}" for n in self.nodes),
            "SF_REDIS_NODES": " ".join(n.address for n in self.nodes),
            "SF_INITIAL_MASTER": self.nodes[0].address,
            "SF_CONFIG_DIR": str(self.files),
            "SF_DATA_DIR": str(node.datadir),
            "SF_MASTER_WAIT_SECONDS": "20",
            "SF_REDIS_PASSWORD_FILE": str(self.secrets_dir / "redis"),
            "SF_SENTINEL_PASSWORD_FILE": str(self.secrets_dir / "sentinel"),
        }

    def start_redis(self, node: RedisNode) -> None:
        node.redis_proc = Proc(
            ["sh", str(self.files / "redis-bootstrap.sh")],
            node.datadir / "redis.log",
            self._bootstrap_env(node),
        )

    def start_sentinel(self, node: RedisNode) -> None:
        node.sentinel_proc = Proc(
            ["sh", str(self.files / "sentinel-bootstrap.sh")],
            node.datadir / "sentinel.log",
            self._bootstrap_env(node),
        )

    def start_watch(self, node: RedisNode) -> None:
        node.watch_proc = Proc(
            ["sh", str(self.files / "redis-watch.sh")],
            node.datadir / "watch.log",
            {**self._bootstrap_env(node), "SF_WATCH_SECONDS": "2"},
        )

    def redis(self, node: RedisNode) -> redis.Redis:
        return self._client(node.port, self.redis_password)

    def sentinel(self, node: RedisNode) -> redis.Redis:
        return self._client(node.sentinel_port, self.sentinel_password)

    @staticmethod
    def _client(port: int, password: str) -> redis.Redis:
        # No client-side retries: a frozen node must cost one timeout, not four with backoff.
        return redis.Redis(
            port=port,
            password=password,
            socket_timeout=1,
            socket_connect_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )

    def role(self, node: RedisNode) -> str | None:
        with contextlib.suppress(redis.RedisError), self.redis(node) as client:
            return str(client.execute_command("ROLE")[0].decode())
        return None

    def master(self) -> RedisNode | None:
        """The node that reports itself master (asked directly); None if not exactly one."""
        masters = [n for n in self.nodes if n.redis_proc and self.role(n) == "master"]
        return masters[0] if len(masters) == 1 else None

    def sentinel_view(self, node: RedisNode) -> dict[str, object]:
        with self.sentinel(node) as client:
            return dict(client.sentinel_master(MASTER_NAME))

    def healthy(self, replicas: int = 2, sentinels: int = 3) -> bool:
        """One master with `replicas` linked replicas, seen the same way by `sentinels`."""
        master = self.master()
        if master is None:
            return False
        with self.redis(master) as client:
            info = client.info("replication")
        linked = [
            v for k, v in info.items() if k.startswith("slave") and v.get("state") == "online"
        ]
        if len(linked) < replicas:
            return False
        agreeing = 0
        for node in self.nodes:
            if node.sentinel_proc is None or node.sentinel_proc.popen.poll() is not None:
                continue
            with contextlib.suppress(redis.RedisError):
                view = self.sentinel_view(node)
                if (
                    view["port"] == master.port
                    and view["num-slaves"] >= replicas  # type: ignore[operator]
                    and view["num-other-sentinels"] >= sentinels - 1  # type: ignore[operator]
                ):
                    agreeing += 1
        return agreeing >= sentinels

    def describe(self) -> str:
        """Roles and Sentinel views, for failure messages."""
        lines = []
        for node in self.nodes:
            view: object = "down"
            with contextlib.suppress(redis.RedisError, OSError):
                v = self.sentinel_view(node)
                view = {k: v[k] for k in ("port", "num-slaves", "num-other-sentinels", "flags")}
            replication: object = None
            with contextlib.suppress(redis.RedisError, OSError), self.redis(node) as client:
                info = client.info("replication")
                replication = {k: v for k, v in info.items() if k.startswith(("slave", "master_l"))}
            lines.append(
                f"node {node.index} :{node.port} role={self.role(node)} sentinel={view} "
                f"replication={replication}"
            )
        return "\n".join(lines)

    def wait_healthy(self, timeout: float = 30, replicas: int = 2, sentinels: int = 3) -> RedisNode:
        try:
            wait_until(lambda: self.healthy(replicas, sentinels), timeout, "redis cluster")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.describe()}") from None
        master = self.master()
        assert master is not None
        return master

    def kill_redis(self, node: RedisNode, sig: int = signal.SIGKILL) -> None:
        assert node.redis_proc is not None
        node.redis_proc.signal(sig)
        if sig == signal.SIGKILL:
            node.redis_proc.popen.wait(5)
            node.redis_proc.stop()
            node.redis_proc = None

    def kill_sentinel(self, node: RedisNode) -> None:
        assert node.sentinel_proc is not None
        node.sentinel_proc.signal(signal.SIGKILL)
        node.sentinel_proc.popen.wait(5)
        node.sentinel_proc.stop()
        node.sentinel_proc = None

    # --- app replicas and proxy ------------------------------------------------------------

    def app_environment(self) -> dict[str, str]:
        return {
            "SESSIONFLEET_REDIS_SENTINELS": ",".join(
                f"127.0.0.1:{n.sentinel_port}" for n in self.nodes
            ),
            "SESSIONFLEET_REDIS_MASTER_NAME": MASTER_NAME,
            "SESSIONFLEET_REDIS_PASSWORD_FILE": str(self.secrets_dir / "redis"),
            "SESSIONFLEET_SENTINEL_PASSWORD_FILE": str(self.secrets_dir / "sentinel"),
            "SESSIONFLEET_LOADTEST_USERS": "200",
            "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
            "SESSIONFLEET_LOGIN_MAX_FAILURES_PER_CLIENT": "100000",
            "SESSIONFLEET_TRUSTED_PROXIES": "127.0.0.1",  # HAProxy
            **self.app_env,
        }

    def start_app(self, index: int) -> AppServer:
        return AppServer(
            self.workdir,
            self.app_environment(),
            name=f"app-{index}",
            workers=self.app_workers,
        )

    def start_proxy(self) -> None:
        self.proxy_port = free_port()
        template = (ROOT / "harness" / "haproxy.cfg").read_text()
        servers = "\n".join(
            f"    server {app.name} 127.0.0.1:{app.port} check inter 500 fall 2 rise 2"
            for app in self.apps
        )
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            template.replace("@PORT@", str(self.proxy_port)).replace("@SERVERS@", servers)
        )
        haproxy = shutil.which("haproxy")
        if haproxy is None:
            raise RuntimeError("haproxy not found: run `make system-deps`")
        self.proxy = Proc([haproxy, "-db", "-f", str(config)], self.workdir / "haproxy.log")
        wait_until(self._proxy_reaches_every_replica, 20, "haproxy routing to every replica")

    def _proxy_reaches_every_replica(self) -> bool:
        """Round robin over the replicas HAProxy holds up: 2N requests see all N of them."""
        served = set()
        with httpx.Client(base_url=self.url, timeout=1) as client:
            for _ in range(2 * len(self.apps)):
                served.add(client.get("/healthz").headers.get("x-served-by"))
        return served == {app.name for app in self.apps}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    # --- whole fleet -----------------------------------------------------------------------

    def start_redis_fleet(self) -> RedisNode:
        """Redis, Sentinel and watch on every node; returns the master once all agree."""
        for node in self.nodes:
            self.start_redis(node)
        for node in self.nodes:
            self.start_sentinel(node)
            self.start_watch(node)
        return self.wait_healthy(timeout=40)

    def start(self) -> None:
        self.start_redis_fleet()
        self.apps = [self.start_app(i) for i in range(self.app_replicas)]
        self.start_proxy()

    def stop(self) -> None:
        procs: list[Proc | None] = [self.proxy]
        procs += [app.proc for app in self.apps]
        for node in self.nodes:
            procs += [node.watch_proc, node.sentinel_proc, node.redis_proc]
        for proc in procs:
            if proc is not None:
                proc.stop()


def chart_files(directory: Path, values: dict[str, Any] | None = None) -> Path:
    """The Redis/Sentinel scripts and configs as the chart ships them: taken from the rendered
    ConfigMap, not the repository, so these tests run what a cluster would mount. `values`
    picks the mode (e.g. {"redis": {"mode": "cluster"}} for the Redis Cluster scripts)."""
    [config] = [
        o
        for o in render(values or {})
        if o["kind"] == "ConfigMap" and "redis" in o["metadata"]["name"]
    ]
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in config["data"].items():
        (directory / name).write_text(text)
    return directory


def wait_for_new_master(cluster: HACluster, old: RedisNode, timeout: float = 30) -> RedisNode:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        master = cluster.master()
        if master is not None and master is not old:
            return master
        time.sleep(0.05)
    raise TimeoutError("no failover")
