"""A webhook receiver for tests: a real HTTP server on a free loopback port that records
every request and answers with scripted statuses (then 200).

It can also misbehave the ways a hostile or broken receiver does: hold the reply until a
``threading.Event`` is set (``hold``), drip the reply body a byte at a time (``drip``), or
send a huge body (``reply_bytes``); ``sent`` records how many body bytes each reply got out
before the client went away."""

from __future__ import annotations

import ssl
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
    def __init__(self, statuses: list[int] | None = None, *, hold: threading.Event | None = None,
                 drip: threading.Event | None = None, drip_bytes: int = 60, drip_interval: float = 0.05,
                 reply_bytes: int = 0):
        self.statuses = list(statuses or [])
        self.requests: list[Received] = []
        self.sent: list[int] = []  # body bytes each finished reply got out
        self._arrived = threading.Condition()
        self.url = ""
        self.hold = hold
        self.drip = drip  # drip until set (or drip_bytes are out)
        self.drip_bytes = drip_bytes
        self.drip_interval = drip_interval
        self.reply_bytes = reply_bytes

    def wait_replied(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` replies have finished (or failed part way)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.sent) >= count, timeout)

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
                if receiver.hold is not None:
                    receiver.hold.wait()
                sent = 0
                try:
                    if receiver.drip is not None:
                        sent = self._drip(status)
                    elif receiver.reply_bytes:
                        sent = self._huge(status)
                    else:
                        self.send_response(status)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                except OSError:  # the client went away
                    sent = getattr(self, "_sent", sent)
                with receiver._arrived:
                    receiver.sent.append(sent)
                    receiver._arrived.notify_all()

            def _drip(self, status):
                self.send_response(status)
                self.send_header("Content-Length", str(receiver.drip_bytes))
                self.end_headers()
                self.wfile.flush()
                self._sent = 0
                while self._sent < receiver.drip_bytes and not receiver.drip.wait(receiver.drip_interval):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    self._sent += 1
                return self._sent

            def _huge(self, status):
                self.send_response(status)
                self.send_header("Content-Length", str(receiver.reply_bytes))
                self.end_headers()
                chunk = b"x" * 65536
                self._sent = 0
                while self._sent < receiver.reply_bytes:
                    piece = chunk[:receiver.reply_bytes - self._sent]
                    self.wfile.write(piece)
                    self._sent += len(piece)
                self.wfile.flush()
                return self._sent

            def log_message(self, *args):
                pass

        return Handler


@contextmanager
def receiving(statuses: list[int] | None = None, path: str = "/hook", tls: ssl.SSLContext | None = None,
              **behaviour):
    """A receiver while the block runs; ``tls`` (a server context) makes it https."""
    receiver = Receiver(statuses, **behaviour)
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver._handler())
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if tls is not None else "http"
    receiver.url = f"{scheme}://127.0.0.1:{server.server_address[1]}{path}"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
