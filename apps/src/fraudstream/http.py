"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz and /readyz."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class Health:
    """Readiness with a reason a person can read. (Liveness: /healthz answers while the process does.)"""

    def __init__(self):
        self.ready = False
        self.reason = "starting"

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self.ready, self.reason = ready, reason


def serve(port: int, health: Health, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._send(200, b"ok\n")
            elif self.path == "/readyz":
                text = ("ready\n" if health.ready else f"not ready: {health.reason}\n").encode()
                self._send(200 if health.ready else 503, text)
            else:
                self._send(404, b"not found\n")

        def _send(self, status, body, content_type="text/plain; charset=utf-8"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # keep scrapes out of the logs
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
