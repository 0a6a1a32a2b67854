"""Traces, metrics and logs: the span tree of a login, OTLP export to a receiver, metric
series, and no raw session ID in any span, log line or metric."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.ops.logging_setup import JsonFormatter
from harness.processes import AppServer, RedisServer, free_port, wait_until
from tests.conftest import LOAD_PASSWORD, login

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """One SDK provider for this process (OpenTelemetry allows setting it once)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    return _EXPORTER


@pytest.fixture
def traced_client(
    spans: InMemorySpanExporter, settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> Iterator[Any]:
    spans.clear()
    yield client_for(settings_for("redis"))


def by_id(finished: tuple[ReadableSpan, ...]) -> dict[int, ReadableSpan]:
    return {s.context.span_id: s for s in finished}


def ancestors(span: ReadableSpan, index: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in index:
        span = index[span.parent.span_id]
        names.append(span.name)
    return names


async def test_login_span_tree(spans: InMemorySpanExporter, traced_client: Any) -> None:
    client = await traced_client
    await login(client)
    finished = spans.get_finished_spans()
    index = by_id(finished)
    [server] = [s for s in finished if s.name == "POST /login" and s.parent is None]
    [load] = [s for s in finished if s.name == "session.load"]
    [commit] = [s for s in finished if s.name == "session.commit"]
    assert ancestors(load, index)[-1] == ancestors(commit, index)[-1] == server.name
    assert commit.attributes["session.mode"] == "create"
    assert len(str(commit.attributes["session.new_key_prefix"])) == 8
    redis_under_commit = [
        s
        for s in finished
        if "session.commit" in ancestors(s, index) and s.kind == trace.SpanKind.CLIENT
    ]
    assert redis_under_commit, [s.name for s in finished]
    assert all(s.attributes.get("db.system") == "redis" for s in redis_under_commit)
    assert {s.context.trace_id for s in finished if s.name.startswith("session.")} == {
        server.context.trace_id
    }


async def test_relogin_has_a_rotation_span(spans: InMemorySpanExporter, traced_client: Any) -> None:
    client = await traced_client
    await login(client)
    spans.clear()
    await login(client)  # logged in already: the old ID is retired
    finished = spans.get_finished_spans()
    [rotate] = [s for s in finished if s.name == "session.rotate"]
    [commit] = [s for s in finished if s.name == "session.commit"]
    assert rotate.parent is not None and rotate.parent.span_id == commit.context.span_id
    assert commit.attributes["session.mode"] == "rotate"
    assert (
        rotate.attributes["session.old_key_prefix"] != rotate.attributes["session.new_key_prefix"]
    )


async def test_incoming_traceparent_joins_the_callers_trace(
    spans: InMemorySpanExporter, traced_client: Any
) -> None:
    client = await traced_client
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    await client.get("/me", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
    [server] = [
        s
        for s in spans.get_finished_spans()
        if s.name == "GET /me" and s.kind == trace.SpanKind.SERVER
    ]
    assert format(server.context.trace_id, "032x") == trace_id


async def test_no_raw_session_id_in_spans_logs_or_metrics(
    spans: InMemorySpanExporter, traced_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    client = await traced_client
    await login(client)
    sid = client.cookies["__Host-sid"]
    await client.post("/counter")
    await client.post("/cart/items", json={"item_id": "x", "qty": 1})
    await client.get("/sessions")
    await login(client)  # rotation
    rotated = client.cookies["__Host-sid"]
    await client.post("/logout")
    metrics = (await client.get("/metrics")).text
    text = [metrics, caplog.text]
    for span in spans.get_finished_spans():
        text.append(span.name)
        text += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        text += [f"{e.name} {dict(e.attributes or {})}" for e in span.events]
    dump = "\n".join(text)
    assert len(spans.get_finished_spans()) > 10
    for raw in (sid, rotated):
        assert raw not in dump


async def test_metric_series_are_exposed(
    settings_for: Callable[..., Any], client_for: Callable[..., Any]
) -> None:
    client = await client_for(settings_for("redis"))
    await login(client)
    await client.post("/counter")
    await client.get("/me")
    body = (await client.get("/metrics")).text
    for series in (
        'sessionfleet_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/login",status="200"}',
        'sessionfleet_session_load_seconds_count{found="true"}',
        'sessionfleet_session_commit_seconds_count{mode="update"}',
        'sessionfleet_session_commit_seconds_count{mode="create"}',
        "sessionfleet_sessions_active",
        "sessionfleet_replica_ack_failures_total",
    ):
        assert series in body, series
    active = [
        line for line in body.splitlines() if line.startswith("sessionfleet_sessions_active ")
    ]
    assert float(active[0].split()[1]) >= 1


def test_json_log_lines_carry_trace_and_span_ids(spans: InMemorySpanExporter) -> None:
    formatter = JsonFormatter()
    with trace.get_tracer("test").start_as_current_span("work") as span:
        record = logging.LogRecord(
            "sessionfleet", logging.WARNING, __file__, 1, "hello %s", ("world",), None
        )
        entry = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert entry["message"] == "hello world" and entry["level"] == "WARNING"
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")


class _Receiver(BaseHTTPRequestHandler):
    batches: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.batches.append(request)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.mark.slow
@pytest.mark.redis
def test_otlp_http_export_reaches_a_receiver(tmp_path: Path) -> None:
    port = free_port()
    receiver = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    redis = RedisServer(tmp_path)
    app = None
    try:
        app = AppServer(
            tmp_path,
            {
                "SESSIONFLEET_REDIS_URL": redis.url,
                "SESSIONFLEET_LOADTEST_USERS": "5",
                "SESSIONFLEET_LOADTEST_PASSWORD": LOAD_PASSWORD,
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "K8S_POD_NAME": "pod-xyz",
            },
            name="traced",
        )
        with httpx.Client(base_url=app.url) as client:
            assert (
                client.post(
                    "/login", json={"username": "user-0001", "password": LOAD_PASSWORD}
                ).status_code
                == 200
            )

        def exported() -> set[str]:
            return {
                span.name
                for batch in _Receiver.batches
                for resource_spans in batch.resource_spans
                for scope_spans in resource_spans.scope_spans
                for span in scope_spans.spans
            }

        wait_until(
            lambda: {"session.load", "session.commit", "POST /login"} <= exported(),
            15,
            "OTLP export",
        )
        resource = {
            a.key: a.value.string_value
            for a in _Receiver.batches[0].resource_spans[0].resource.attributes
        }
        assert resource["service.name"] == "sessionfleet"
        assert resource["service.instance.id"] == "traced"
        assert resource["k8s.pod.name"] == "pod-xyz"
    finally:
        if app:
            app.stop()
        redis.stop()
        receiver.shutdown()
