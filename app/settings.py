"""Every knob of the service, read from `SESSIONFLEET_*` environment variables.

Secrets (`SecretStr` fields) can also come from a file named by `SESSIONFLEET_<FIELD>_FILE`,
the way a Kubernetes Secret is mounted. Build a `Settings()` in `create_app`, never at import.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, computed_field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "SESSIONFLEET_"


class SecretFileSource(PydanticBaseSettingsSource):
    """Reads `SESSIONFLEET_<FIELD>_FILE` for secret fields (trailing newline stripped)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        path = os.environ.get(f"{ENV_PREFIX}{field_name.upper()}_FILE")
        if not path or field.annotation not in (SecretStr, SecretStr | None):
            return None, field_name, False
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n"), field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, _ = self.get_field_value(field, name)
            if value is not None:
                values[key] = value
        return values


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    # --- identity -------------------------------------------------------------------------
    replica_name: str = Field(
        default_factory=socket.gethostname,
        description="Name in the X-Served-By header (the pod name on Kubernetes).",
    )

    # --- store ----------------------------------------------------------------------------
    redis_url: str | None = Field(None, description="Standalone Redis, e.g. redis://host:6379/0.")
    redis_sentinels: str | None = Field(
        None, description="Comma-separated host:port of Sentinels; wins over redis_url."
    )
    redis_cluster_nodes: str | None = Field(
        None,
        description="Comma-separated host:port of Redis Cluster start-up nodes; wins over "
        "redis_url. Not with redis_sentinels.",
    )
    redis_master_name: str = Field("sessionfleet", description="Sentinel master group name.")
    redis_username: str | None = Field(None, description="Redis ACL user (default user if unset).")
    redis_password: SecretStr | None = Field(None, description="Password of the Redis servers.")
    sentinel_password: SecretStr | None = Field(None, description="Password of the Sentinels.")
    redis_tls: bool = Field(False, description="TLS to Redis and Sentinels.")
    redis_tls_ca_file: str | None = Field(None, description="CA bundle to verify Redis TLS.")
    redis_socket_timeout: float = Field(
        1.0, gt=0, description="Seconds a Redis read may take before the connection is dropped."
    )
    redis_connect_timeout: float = Field(0.5, gt=0, description="Seconds to open a connection.")
    redis_max_connections: int = Field(64, ge=1, description="Pool size per worker process.")
    store_deadline: float = Field(
        3.0,
        gt=0,
        description="Seconds one request may spend on the store, retries included, before 503.",
    )
    retry_after: int = Field(2, ge=1, description="Retry-After seconds sent with a 503.")
    readiness_grace: float = Field(
        15.0,
        ge=0,
        description="Seconds /readyz stays ready after the store last answered (ride out a "
        "failover instead of emptying the Service).",
    )
    redis_wait_replicas: int | None = Field(
        None,
        ge=0,
        description="Replicas that must acknowledge a commit (WAIT). Unset: 1 with Sentinel or "
        "a cluster, 0 with a standalone Redis.",
    )
    redis_wait_timeout_ms: int = Field(1000, ge=1, description="How long WAIT may block.")
    redis_wait_all_writes: bool = Field(
        True,
        description="Wait for replicas on every session write; false: only logins wait "
        "(faster writes, but a failover may drop a session's last changes).",
    )

    # --- sessions -------------------------------------------------------------------------
    cookie_secure: bool = Field(True, description="Secure + __Host- cookie; false only on http.")
    cookie_name: str = Field("sid", pattern=r"^[A-Za-z0-9_-]{1,32}$", description="Cookie name.")
    session_idle_timeout: int = Field(1800, ge=1, description="Seconds of inactivity allowed.")
    session_absolute_lifetime: int = Field(
        43200, ge=1, description="Seconds a session may live however active it is."
    )
    session_max_bytes: int = Field(
        16384, ge=256, description="Budget for one session's stored data (413 beyond it)."
    )
    max_sessions_per_user: int = Field(
        100, ge=1, description="Oldest sessions of a user are signed out beyond this many."
    )

    # --- users and login ------------------------------------------------------------------
    users_file: str | None = Field(
        None, description="File of `username:argon2-hash` lines (a mounted Secret)."
    )
    loadtest_users: int = Field(
        0, ge=0, le=100_000, description="Create users user-0001..user-N for load tests."
    )
    loadtest_password: SecretStr | None = Field(None, description="Password of the load users.")
    password_checks_per_worker: int = Field(
        2,
        ge=1,
        le=64,
        description="Password checks one worker runs at once (19 MiB of memory each); more "
        "logins queue. Size the container's memory limit from it (docs/operations.md).",
    )
    login_max_failures_per_user: int = Field(
        5, ge=1, description="Failed logins of one user before each further one locks it."
    )
    login_max_failures_per_client: int = Field(
        50, ge=1, description="Failed logins from one client address before it is locked."
    )
    login_backoff_first: float = Field(
        1.0, gt=0, description="Seconds of the first lock; each further failure doubles it."
    )
    login_backoff_max: float = Field(300.0, gt=0, description="The longest lock, in seconds.")
    login_failure_window: int = Field(
        900, ge=1, description="Seconds without a failure after which failures are forgotten."
    )
    login_known_device_days: int = Field(
        30,
        ge=1,
        description="Days a browser that logged in stays known for that user: its attempts "
        "are not locked by failures from elsewhere.",
    )

    # --- operations -----------------------------------------------------------------------
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one JSON object per line with trace_id/span_id; text: plain."
    )
    log_level: str = Field("INFO", description="Root log level.")
    metrics_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Serve /metrics on this port only (gunicorn.conf.py listens on it too), "
        "so the ingress, which routes the app's port, never exposes it. 0: on the app's port.",
    )

    api_docs: bool = Field(
        False,
        description="Serve /docs (Swagger UI) and /redoc, their assets from the installed "
        "package (nothing from the internet). Off in production: no API explorer on the "
        "cookie's origin. /openapi.json is always served.",
    )

    # --- requests -------------------------------------------------------------------------
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or CIDR ranges of your own proxies (ingress, "
        "load balancer). X-Forwarded-For is believed only from them: the client is the "
        "right-most address they did not add. Empty: the connecting peer is the client. '*' "
        "trusts any peer (only when nothing but your proxies can reach the app).",
    )
    trusted_origins: str = Field(
        "",
        description="Extra comma-separated origins allowed to send state-changing requests.",
    )

    @field_validator("redis_sentinels", "redis_cluster_nodes")
    @classmethod
    def _addresses_are_host_port(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        for item in value.split(","):
            host, sep, port = item.strip().rpartition(":")
            if not sep or not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {item.strip()!r}")
        return value

    @model_validator(mode="after")
    def _loadtest_users_need_password(self) -> Settings:
        if self.loadtest_users and self.loadtest_password is None:
            raise ValueError("SESSIONFLEET_LOADTEST_USERS needs SESSIONFLEET_LOADTEST_PASSWORD")
        if self.session_absolute_lifetime < self.session_idle_timeout:
            raise ValueError("session_absolute_lifetime must be >= session_idle_timeout")
        if self.redis_sentinels and self.redis_cluster_nodes:
            raise ValueError("set SESSIONFLEET_REDIS_SENTINELS or _REDIS_CLUSTER_NODES, not both")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sentinel_addresses(self) -> list[tuple[str, int]]:
        return _host_ports(self.redis_sentinels)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cluster_addresses(self) -> list[tuple[str, int]]:
        return _host_ports(self.redis_cluster_nodes)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def wait_replicas(self) -> int:
        if self.redis_wait_replicas is not None:
            return self.redis_wait_replicas
        return 1 if self.redis_sentinels or self.redis_cluster_nodes else 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_sentinels or self.redis_cluster_nodes or self.redis_url)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, SecretFileSource(settings_cls))


def _host_ports(value: str | None) -> list[tuple[str, int]]:
    if not value:
        return []
    pairs = (item.strip().rpartition(":") for item in value.split(","))
    return [(host, int(port)) for host, _, port in pairs]
