"""A small HTTP endpoint per process: /metrics (Prometheus), /healthz and /readyz."""

from __future__ import annotations

import faulthandler
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


class Health:
    """Liveness and readiness with a reason a person can read, and a stall watchdog.

    A process whose main loop calls beat() is alive while the loop turns. Once it has been
    ready and then not turned for `stall_seconds`, /healthz says so (a liveness probe restarts
    it) and every thread's stack goes to stderr, so the log shows where it hangs. Restores
    (not ready) are not stalls.
    """

    def __init__(self, stall_seconds: float = 0):
        self.ready = False
        self.reason = "starting"
        self.stall_seconds = stall_seconds
        self._turned = self._armed = time.monotonic()

    def set_ready(self, ready: bool, reason: str = "") -> None:
        self.ready, self.reason = ready, reason
        if not ready and self.stall_seconds:
            faulthandler.cancel_dump_traceback_later()
        self._turned = time.monotonic()

    def beat(self) -> None:
        """The main loop turned (cheap: re-arms the watchdog at most once a second)."""
        now = self._turned = time.monotonic()
        if now - self._armed < 1:
            return
        self._armed = now
        if self.ready and self.stall_seconds:
            faulthandler.dump_traceback_later(self.stall_seconds, repeat=True)

    @property
    def alive(self) -> bool:
        return not (self.ready and self.stall_seconds and time.monotonic() - self._turned > self.stall_seconds)


def serve(port: int, health: Health, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            if self.path == "/metrics":
                self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                alive = health.alive
                self._send(200 if alive else 503, b"ok\n" if alive else
                           f"stalled: the main loop has not turned for over {health.stall_seconds:.0f}s\n".encode())
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
