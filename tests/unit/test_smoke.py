"""app.ops.smoke (the `helm test` pod's check) against a server that is not reachable yet."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.ops import smoke


class Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"store": "ok"}).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def late_server() -> Iterator[str]:
    """A port that refuses connections for 1.5 s (as a NetworkPolicy controller that has not
    seen the new pod yet rejects them), then serves /readyz."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    servers: list[ThreadingHTTPServer] = []

    def start() -> None:
        servers.append(ThreadingHTTPServer(("127.0.0.1", port), Ready))
        servers[0].serve_forever()

    timer = threading.Timer(1.5, start)
    timer.start()
    yield f"http://127.0.0.1:{port}"
    servers[0].shutdown()  # serve_forever runs in the timer's thread
    timer.join()
    servers[0].server_close()


def test_a_refused_connection_is_retried_until_the_server_answers(late_server: str) -> None:
    assert smoke.main(late_server) is None


def test_a_server_that_never_answers_fails_within_the_budget() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OSError):
        smoke._patiently(f"http://127.0.0.1:{port}/readyz", seconds=2)
