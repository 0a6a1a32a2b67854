"""What the session layer reports as it works: traces (OpenTelemetry API) and an observer hook
for metrics. Without an OpenTelemetry SDK installed the spans are no-ops; without an observer
nothing is counted. Session IDs never appear: at most the first 8 hex digits of the store key
(itself a SHA-256 digest of the ID)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from opentelemetry import trace

from .census import Census, ReplicaCensus

_tracer = trace.get_tracer("sessionfleet.sessions")
_NO_SPAN = contextlib.nullcontext(trace.INVALID_SPAN)  # reusable: no state


def span_factory() -> Callable[..., contextlib.AbstractContextManager[Any]]:
    """`start_as_current_span` of the tracer provider installed now; without an OpenTelemetry
    SDK, a shared no-op. Decided once per store and manager: the API's check reads the
    environment each time, and its own no-op still attaches a context per span."""
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return lambda *_, **__: _NO_SPAN
    return _tracer.start_as_current_span


def key_prefix(store_key: str | None) -> str:
    return store_key[:8] if store_key else ""


class SessionObserver(Protocol):
    def loaded(self, seconds: float, found: bool) -> None: ...

    def committed(self, seconds: float, mode: str, conflicts: int) -> None: ...

    def conflict(self, outcome: str) -> None:
        """outcome: "reapplied" (an update function ran again) or "refused" (409)."""

    def store_retry(self, operation: str, error: str) -> None: ...

    def replica_ack_failed(self) -> None: ...

    def census_taken(self, census: ReplicaCensus | None) -> None:
        """A Sentinel census came back (None: no majority of Sentinels named one master).
        At most one per process at a time, before and after durable commits."""


def observed(census: Census, observer: SessionObserver) -> Census:
    """`census`, reporting each result to `observer` (nothing else changes)."""

    async def census_reported() -> ReplicaCensus | None:
        result = await census()
        observer.census_taken(result)
        return result

    return census_reported


class NullObserver:
    def loaded(self, seconds: float, found: bool) -> None:
        pass

    def committed(self, seconds: float, mode: str, conflicts: int) -> None:
        pass

    def conflict(self, outcome: str) -> None:
        pass

    def store_retry(self, operation: str, error: str) -> None:
        pass

    def replica_ack_failed(self) -> None:
        pass

    def census_taken(self, census: ReplicaCensus | None) -> None:
        pass
