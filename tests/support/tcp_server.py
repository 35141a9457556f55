"""A loopback TCP server that is not (or not quite) an HTTP server, for deliveries that must
meet a receiver misbehaving at the socket level."""

from __future__ import annotations

import socket
import threading
from contextlib import contextmanager


@contextmanager
def tcp_server(behaviour):
    """Each accepted connection is given to ``behaviour``; yields a webhook URL on the server.
    Connections are closed when the block ends."""
    listener = socket.create_server(("127.0.0.1", 0))
    done = threading.Event()
    held = []

    def serve():
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            held.append(connection)
            behaviour(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        done.set()
        listener.close()
        for connection in held:
            connection.close()
