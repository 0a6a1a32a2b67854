"""Prometheus metrics: HTTP latency, session load/commit latency, conflicts, store retries,
replica-acknowledgement failures, active sessions, what the Sentinel census says (master
changes, replicas a durable commit can reach, disagreement), the version. Served at /metrics.

Under gunicorn each worker is a process: with PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py
does), values live in that directory and /metrics adds up every worker's. Labels never carry
a session ID or a user name.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from ..sessions import ReplicaCensus, StoreUnavailable
from .version import version

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
ACTIVE_SESSIONS_MAX_AGE = 30.0  # seconds between counts of the store's sessions (a SCAN)

HTTP_LATENCY = Histogram(
    "sessionfleet_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
SESSION_LOAD = Histogram(
    "sessionfleet_session_load_seconds",
    "Session load latency (one store round trip)",
    ["found"],
    buckets=LATENCY_BUCKETS,
)
SESSION_COMMIT = Histogram(
    "sessionfleet_session_commit_seconds",
    "Session commit latency (round trip + replica wait)",
    ["mode"],
    buckets=LATENCY_BUCKETS,
)
CONFLICTS = Counter(
    "sessionfleet_session_conflicts_total", "Concurrent changes of one session key", ["outcome"]
)
STORE_RETRIES = Counter(
    "sessionfleet_store_retries_total",
    "Store calls retried (failover, timeouts)",
    ["operation", "error"],
)
REPLICA_ACK_FAILURES = Counter(
    "sessionfleet_replica_ack_failures_total", "Commits not acknowledged by enough replicas in time"
)
WORKER_EXITS = Counter(
    "sessionfleet_worker_exits_total",
    "App worker processes that exited while the server ran: a crash or an OOM kill (the pod's "
    "restart count does not move: gunicorn starts a new worker)",
)
ACTIVE_SESSIONS = Gauge(
    "sessionfleet_sessions_active",
    "Sessions in the store (counted at most every 30 s)",
    multiprocess_mode="max",
)
# From the Sentinel census (Sentinel deployments only), taken around durable commits: never on
# a request that does not commit durably, and at most one query per process at a time.
CENSUS = Counter(
    "sessionfleet_sentinel_census_total",
    "Sentinel census results: agreed, dissent (a majority named the master, another Sentinel "
    "named a different one), no_majority, failing_over",
    ["outcome"],
)
MASTER_CHANGES = Counter(
    "sessionfleet_redis_master_changes_total",
    "Times the census named another master than this worker's previous census (each worker "
    "process counts the switches it sees)",
)
DURABLE_REPLICAS = Gauge(
    "sessionfleet_redis_durable_replicas",
    "Replicas the latest census counts as up: how many a durable commit waits for",
    multiprocess_mode="livemostrecent",
)
BUILD_INFO = Gauge(
    "sessionfleet_build_info", "The version this replica runs", ["version"], multiprocess_mode="max"
)


class PrometheusObserver:
    """The session layer's `SessionObserver`, counting into the metrics above."""

    def __init__(self) -> None:
        self._master: tuple[str, int] | None = None
        BUILD_INFO.labels(version=version()).set(1)
        # The per-request series, looked up once (`labels()` takes a lock and builds a key).
        self._loads = {f: SESSION_LOAD.labels(found=str(f).lower()) for f in (True, False)}
        self._commits: dict[str, Histogram] = {}

    def loaded(self, seconds: float, found: bool) -> None:
        self._loads[found].observe(seconds)

    def committed(self, seconds: float, mode: str, conflicts: int) -> None:
        series = self._commits.get(mode)
        if series is None:
            series = self._commits[mode] = SESSION_COMMIT.labels(mode=mode)
        series.observe(seconds)

    def conflict(self, outcome: str) -> None:
        CONFLICTS.labels(outcome=outcome).inc()

    def store_retry(self, operation: str, error: str) -> None:
        STORE_RETRIES.labels(operation=operation, error=error).inc()

    def replica_ack_failed(self) -> None:
        REPLICA_ACK_FAILURES.inc()

    def census_taken(self, census: ReplicaCensus | None) -> None:
        if census is None:
            CENSUS.labels(outcome="no_majority").inc()
            return
        if census.failing_over:
            outcome = "failing_over"
        else:
            outcome = "dissent" if census.dissenting else "agreed"
        CENSUS.labels(outcome=outcome).inc()
        DURABLE_REPLICAS.set(census.replicas)
        if self._master is not None and census.master != self._master:
            MASTER_CHANGES.inc()
        self._master = census.master


def metrics_endpoint(
    count_sessions: Callable[[], Awaitable[int]],
) -> Callable[[Request], Awaitable[Response]]:
    counted_at = -ACTIVE_SESSIONS_MAX_AGE

    async def metrics(_: Request) -> Response:
        nonlocal counted_at
        if time.monotonic() - counted_at >= ACTIVE_SESSIONS_MAX_AGE:
            counted_at = time.monotonic()
            with contextlib.suppress(StoreUnavailable):  # an outage must not break the scrape
                ACTIVE_SESSIONS.set(await count_sessions())
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

    return metrics


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY
