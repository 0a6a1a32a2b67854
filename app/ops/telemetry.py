"""OpenTelemetry tracing, set up once per process from the standard OTEL_* variables.

Tracing is on when an exporter is configured (`OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_TRACES_EXPORTER=otlp|console`) and off otherwise
or with `OTEL_SDK_DISABLED=true`: then no SDK is loaded and the spans the code opens are the
API's no-ops. Protocol (`OTEL_EXPORTER_OTLP_PROTOCOL`: http/protobuf or grpc), sampling
(`OTEL_TRACES_SAMPLER[_ARG]`), batching (`OTEL_BSP_*`) and resource attributes
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) are read by the SDK itself.

Called from `create_app`, i.e. in each gunicorn worker after the fork: the batch span
processor's thread does not survive a fork.
"""

from __future__ import annotations

import os
from typing import Any

from opentelemetry import trace

from ..settings import Settings

EXCLUDED_URLS = "healthz,readyz,metrics"


def tracing_requested() -> bool:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return bool(
        exporter
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup_tracing(settings: Settings) -> Any | None:
    """The process's SDK TracerProvider (made and installed on first call), or None when
    tracing is off. A provider installed beforehand (tests) is used as it is."""
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        _instrument_redis(current)
        return current
    if not tracing_requested():
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    provider = TracerProvider(resource=Resource.create(_resource_attributes(settings)))
    provider.add_span_processor(BatchSpanProcessor(_exporter()))
    trace.set_tracer_provider(provider)
    _instrument_redis(provider)
    return provider


def _resource_attributes(settings: Settings) -> dict[str, str]:
    attributes = {
        "service.name": os.environ.get("OTEL_SERVICE_NAME", "sessionfleet"),
        "service.version": _version(),
        "service.instance.id": settings.replica_name,
    }
    # Kubernetes attributes, passed in by the chart through the downward API.
    for attribute, variable in (
        ("k8s.pod.name", "K8S_POD_NAME"),
        ("k8s.namespace.name", "K8S_NAMESPACE_NAME"),
        ("k8s.node.name", "K8S_NODE_NAME"),
        ("k8s.pod.uid", "K8S_POD_UID"),
    ):
        if os.environ.get(variable):
            attributes[attribute] = os.environ[variable]
    return attributes


def _exporter() -> Any:
    if os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    protocol = os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "")
    )
    if protocol.strip() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter as HTTPSpanExporter,
    )

    return HTTPSpanExporter()


def _instrument_redis(provider: Any) -> None:
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    instrumentor = RedisInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    # Values (session data) stay out of spans: only command names and key digests.
    instrumentor.instrument(tracer_provider=provider)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sessionfleet")
    except PackageNotFoundError:
        return "0+unknown"
