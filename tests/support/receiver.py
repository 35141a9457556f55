"""A webhook receiver for tests: a real HTTP server on a free loopback port that records
every request and answers with scripted statuses (then 200)."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str  # with the query string, as sent
    headers: dict[str, str]
    body: bytes
    status: int


class Receiver:
    def __init__(self, statuses: list[int] | None = None):
        self.statuses = list(statuses or [])
        self.requests: list[Received] = []
        self._arrived = threading.Condition()
        self.url = ""

    def wait_for(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests have arrived (or the timeout passes)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= count, timeout)

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._arrived:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(Received(self.path, dict(self.headers), body, status))
                    receiver._arrived.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler


@contextmanager
def receiving(statuses: list[int] | None = None, path: str = "/hook"):
    receiver = Receiver(statuses)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver._handler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
