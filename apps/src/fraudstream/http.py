"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz and /readyz."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class Health:
    """Readiness with a reason a person can read, and liveness from a loop's progress.

    /healthz fails once a watched loop has not called progressed() for `stall_seconds`: a
    liveness probe then restarts a process that is alive but wedged. Until watch() is called
    (start-up, state restore) the process counts as alive while it answers.
    """

    def __init__(self):
        self.ready = False
        self.reason = "starting"
        self.stall_seconds: float | None = None
        self.last_progress = time.monotonic()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self.ready, self.reason = ready, reason

    def watch(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self.last_progress = time.monotonic()

    def progressed(self) -> None:
        self.last_progress = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        idle = time.monotonic() - self.last_progress
        if self.stall_seconds is not None and idle > self.stall_seconds:
            return False, f"no progress for {idle:.0f}s (limit {self.stall_seconds:g}s); {self.reason or 'no error'}"
        return True, "ok"


def serve(port: int, health: Health, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                alive, text = health.alive()
                self._send(200 if alive else 503, f"{text}\n".encode())
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
