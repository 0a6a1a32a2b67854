"""Log records as JSON lines carrying the current trace and span IDs, so a log line leads to
its trace. Messages never contain session IDs (only store-key prefixes) or secrets."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from opentelemetry import trace

_HANDLER_NAME = "sessionfleet"


class JsonFormatter(logging.Formatter):
    replica = ""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.replica:
            entry["replica"] = self.replica
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str, level: str, replica: str) -> None:
    """Route every logger through one stderr handler (idempotent: safe to call again).
    Handlers installed before (gunicorn's logconfig, basicConfig) are replaced, so a line is
    never written twice."""
    root = logging.getLogger()
    root.handlers = [h for h in root.handlers if not _writes_to_console(h)]
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    if log_format == "json":
        formatter = JsonFormatter()
        formatter.replica = replica
        handler.setFormatter(formatter)
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "gunicorn.error"):
        # Let server logs reach the root handler instead of their own plain-text ones.
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # One line per request is the ingress's job; the app logs what the ingress cannot see.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _writes_to_console(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    return handler.get_name() == _HANDLER_NAME or stream in (sys.stderr, sys.stdout)
